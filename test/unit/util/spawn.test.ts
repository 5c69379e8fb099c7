import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { describeExit, lastLines, run, runShell } from "../../../src/util/spawn";
import { alive } from "../../helpers/processes";

describe("run / runShell", () => {
  test("exit codes, stdout and stderr", async () => {
    const r = await runShell("echo out; echo err >&2; exit 3", { timeoutMs: 10_000 });
    assert.deepEqual(r, { code: 3, signal: null, stdout: "out\n", stderr: "err\n", timedOut: false });
    assert.equal(describeExit(r), "exit 3");
    const ok = await run(["true"], { timeoutMs: 10_000 });
    assert.equal(ok.code, 0);
  });

  test("argv elements are not interpreted by a shell", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wile-spawn-"));
    const r = await run(["echo", `$(touch ${dir}/pwned)`, "a;b", "*"], { timeoutMs: 10_000 });
    assert.equal(r.stdout, `$(touch ${dir}/pwned) a;b *\n`);
    assert.equal(existsSync(join(dir, "pwned")), false);
  });

  test("input goes to stdin; env and cwd are passed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wile-spawn-"));
    const r = await runShell('cat; printf "%s|" "$FOO"; pwd', {
      timeoutMs: 10_000,
      input: "hello\n",
      env: { PATH: process.env.PATH, FOO: "bar" },
      cwd: dir,
    });
    assert.equal(r.stdout, `hello\nbar|${dir}\n`);
  });

  test("a missing program rejects with ENOENT", async () => {
    await assert.rejects(run(["/nonexistent/wile-no-such-program"], { timeoutMs: 10_000 }), {
      code: "ENOENT",
    });
  });

  test("a timeout kills the whole process group, grandchildren included", async () => {
    const started = Date.now();
    const r = await runShell("sleep 30 & echo $!; sleep 30", { timeoutMs: 300 });
    assert.equal(r.timedOut, true);
    assert.equal(r.code, null);
    assert.equal(r.signal, "SIGTERM");
    assert.match(describeExit(r, 300), /timed out/);
    assert.ok(Date.now() - started < 5000, "returned promptly");
    const grandchild = Number(r.stdout.trim());
    assert.ok(grandchild > 0);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(alive(grandchild), false, "the background sleep was killed too");
  });

  test("a child that ignores SIGTERM gets SIGKILL", async () => {
    const r = await runShell("trap '' TERM; sleep 30", { timeoutMs: 200 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, "SIGKILL");
  });

  test("output is capped per stream and the child is still drained", async () => {
    const r = await runShell(
      "head -c 3000000 /dev/zero | tr '\\0' a; head -c 5000 /dev/zero | tr '\\0' b >&2",
      {
        timeoutMs: 20_000,
        maxOutputBytes: 1024 * 1024,
      },
    );
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, 1024 * 1024);
    assert.equal(r.stderr.length, 5000);
    const dflt = await runShell("head -c 1100000 /dev/zero | tr '\\0' a", { timeoutMs: 20_000 });
    assert.equal(dflt.stdout.length, 1024 * 1024, "1 MiB by default");
  });

  test("a daemon that keeps the pipes open does not hang the run", async () => {
    const started = Date.now();
    const r = await runShell("(sleep 5 &) ; echo started", { timeoutMs: 20_000 });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "started\n");
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
  });

  test("a child that does not read stdin does not break the run", async () => {
    const r = await run(["true"], { timeoutMs: 10_000, input: "x".repeat(1_000_000) });
    assert.equal(r.code, 0);
  });
});

describe("lastLines", () => {
  test("stderr then stdout, blank lines dropped, the last 5 joined on one printable line", () => {
    const r = { stdout: "o1\r\no2\n\n", stderr: "e1\n  \ne2\te3\n" };
    assert.equal(lastLines(r), "e1 | e2 e3 | o1 | o2");
    assert.equal(lastLines(r, 2), "o1 | o2");
    const many = { stdout: Array.from({ length: 9 }, (_, i) => `line ${i}`).join("\n"), stderr: "" };
    assert.equal(lastLines(many), "line 4 | line 5 | line 6 | line 7 | line 8");
    assert.equal(lastLines({ stdout: "x".repeat(500), stderr: "" }, 5, 10), "xxxxxxxxxx...");
    assert.equal(lastLines({ stdout: "\n", stderr: "" }), "");
  });
});
