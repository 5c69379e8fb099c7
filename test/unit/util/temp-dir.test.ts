import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { withPrivateTempDir } from "../../../src/util/temp-dir";
import { alive } from "../../helpers/processes";

describe("withPrivateTempDir", () => {
  test("a 0700 directory under TMPDIR, removed with its files when the work ends or throws", async () => {
    let seen = "";
    const v = await withPrivateTempDir("wile-unit-", async (dir) => {
      seen = dir;
      assert.equal(dirname(dir), tmpdir());
      assert.match(dir, /\/wile-unit-[^/]+$/);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      writeFileSync(join(dir, "key.pem"), "secret");
      return 42;
    });
    assert.equal(v, 42);
    assert.equal(existsSync(seen), false);
    await assert.rejects(
      withPrivateTempDir("wile-unit-", async (dir) => {
        seen = dir;
        writeFileSync(join(dir, "key.pem"), "secret");
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(existsSync(seen), false);
  });

  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130],
    ["SIGHUP", 129],
  ] as const) {
    test(`${signal} while the work runs: the directory and the running child are gone, exit ${code}`, async () => {
      const tmp = mkdtempSync(join(tmpdir(), "wile-unit-int-"));
      try {
        const ownTmp = join(tmp, "tmp");
        const pidFile = join(tmp, "pid");
        mkdirSync(ownTmp);
        const fixture = join(import.meta.dirname, "fixtures", "interrupted-temp-dir.ts");
        const child = spawn(process.execPath, ["--import", "tsx", fixture, pidFile], {
          env: { ...process.env, TMPDIR: ownTmp },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stderr.on("data", (d: Buffer) => {
          err += d.toString();
        });
        const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
        const dir = await new Promise<string>((resolve, reject) => {
          child.stdout.on("data", (d: Buffer) => {
            out += d.toString();
            const m = /^ready (.*)\n/.exec(out);
            if (m?.[1]) resolve(m[1]);
          });
          void exited.then((c) => reject(new Error(`fixture exited early with ${c}: ${err}`)));
        });
        assert.equal(dirname(dir), ownTmp, "made under the TMPDIR it was given");
        assert.deepEqual(readdirSync(dir), ["privkey.pem"]);
        // The shell writes its pid, then becomes sleep.
        while (!existsSync(pidFile) || readFileSync(pidFile, "utf8").trim() === "") {
          await new Promise((r) => setTimeout(r, 20));
        }
        const sleeper = Number(readFileSync(pidFile, "utf8"));
        assert.ok(alive(sleeper));
        child.kill(signal);
        assert.equal(await exited, code, err);
        assert.match(err, new RegExp(`interrupted \\(${signal}\\): cleaning up`));
        assert.equal(existsSync(dir), false, "the key's temp dir is removed");
        // (tsx keeps its cache in TMPDIR too.)
        assert.deepEqual(
          readdirSync(ownTmp).filter((n) => n.startsWith("wile-")),
          [],
        );
        // The signal was sent before the fixture exited; give the kernel a moment to end it.
        for (let i = 0; i < 100 && alive(sleeper); i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(alive(sleeper), false, "the child process (its own process group) got the signal too");
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
});
