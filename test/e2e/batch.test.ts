/**
 * `wile issue --batch` end to end (dist/wile.cjs, Pebble without authorization reuse, nginx):
 * - a file of ten certificate lines with comments and blank lines, per-line webroots served by
 *   their own nginx server blocks, --parallel 4, --json: nine issued, each verified against
 *   Pebble's root, renewal.json per line, one line's deploy (files); the line whose webroot nginx does not serve fails with
 *   its line number and stops none of the others (exit 1);
 * - the same file again, one line with a name added: that line is issued anew, the others are
 *   skipped (not due) with their serials unchanged;
 * - stdin (`--batch -`), human output, exit 0;
 * - lines proved by wile's own listener (--standalone, one port) with --parallel 3: all issued
 *   (the solvers of one process share the listener);
 * - a malformed name on line 37: exit 2, every bad line named, Pebble's log did not grow.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sanNames, serialHex, verifyChain } from "../helpers/certs";
import { certFiles } from "../helpers/e2e";
import { freePort, startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
/** Pebble's VA fetches http-01 from vaPort, where wile --standalone listens. */
let sa: TestEnv;
let vaPort: number;
let tmp: string;
let root: string;
/** Webroots with an nginx server block each: a.batch.test -> sites/a, ... */
const SITES = ["a", "b", "c"];

before(async () => {
  vaPort = await freePort();
  [env, sa] = await Promise.all([
    startTestEnv({ nginxExtra: true, env: { PEBBLE_AUTHZREUSE: "0" } }),
    startTestEnv({ vaHttpPort: vaPort, env: { PEBBLE_AUTHZREUSE: "0" } }),
  ]);
  tmp = tempDir("wile-e2e-batch-");
  const blocks = SITES.map((s) => {
    const dir = join(tmp, "sites", s);
    mkdirSync(dir, { recursive: true });
    return `  server {\n    listen 127.0.0.1:${env.httpPort};\n    server_name .${s}.batch.test;\n    root ${dir};\n    location / { try_files $uri =404; }\n  }\n`;
  });
  writeFileSync(env.nginxExtraConf, blocks.join(""));
  await env.reloadNginx();
  mkdirSync(join(tmp, "sites", "unserved"));
  root = await env.pebbleRoot();
});

after(() => Promise.all([env?.stop(), sa?.stop()]));

const caArgs = () => ["--server", env.directoryUrl, "--ca-bundle", env.caBundle];
/** A certificate line: names, each with --resolve for wile's preflight, then `extra`. */
const line = (names: string[], extra = "") =>
  `${names.join(" ")} ${names.map((n) => `--resolve ${env.resolveArg(n)}`).join(" ")} ${extra}`.trim();
const site = (s: string) => join(tmp, "sites", s);

/** One JSON object per stdout line: the results, then the summary. */
function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function verified(home: string, name: string): string {
  const f = certFiles(home, name);
  verifyChain(root, f.chain, f.cert, tempDir("wile-e2e-batch-verify-"));
  return serialHex(f.cert);
}

// First and alone: Pebble's log must not grow while it runs.
it("refuses a file with a malformed line before anything is contacted (exit 2)", async () => {
  const home = join(tempDir("wile-e2e-batch-home-"), "wile");
  const lines = Array.from({ length: 40 }, (_, i) => line([`m${i + 1}.batch.test`]));
  lines[36] = line(["bad_name!.batch.test"]);
  lines[38] = `${line(["m39.batch.test"])} --key-type ec-999`;
  const file = join(tempDir("wile-e2e-batch-file-"), "bad.txt");
  writeFileSync(file, lines.join("\n"));
  const logBefore = readFileSync(env.pebbleLog, "utf8").length;
  const r = await runWile(["issue", "--batch", file, "-w", env.webroot, ...caArgs()], { home });
  assert.equal(r.code, 2, dump(r));
  assert.match(r.stderr, /2 of the 40 certificate lines/);
  assert.match(r.stderr, /line 37: .*bad_name!\.batch\.test/);
  assert.match(r.stderr, /line 39: .*ec-999/);
  assert.equal(r.stdout, "");
  assert.equal(readFileSync(env.pebbleLog, "utf8").length, logBefore, "Pebble's log did not grow");
  assert.equal(existsSync(join(home, "accounts")), false, "no account was made");
});

describe("wile issue --batch", { concurrency: true }, () => {
  it("issues every line, reports a failing one by number, and skips what is issued on the next run", async () => {
    const home = join(tempDir("wile-e2e-batch-home-"), "wile");
    const lines = [
      "# hosting customers, generated nightly",
      "",
      line(["a.batch.test", "www.a.batch.test"], `-w ${site("a")}`),
      line(["shop.b.batch.test"], `--webroot=${site("b")} --key-type ec-384`),
      "   # a comment after blanks",
      line(["c.batch.test"], `-w '${site("c")}'`),
      line(["failing.batch.test"], `-w ${site("unserved")}`),
      line(["d1.batch.test"]),
      line(["d2.batch.test", "www.d2.batch.test"]),
      `${line(["d3.batch.test"])}   # default webroot from the command line`,
      line(["mail.c.batch.test"], `-w ${site("c")}`),
      line(["blog.a.batch.test"], `-w ${site("a")}`),
      "\t",
      line(
        ["d4.batch.test"],
        `--deploy files --cert-file ${join(tmp, "out", "d4-cert.pem")} --key-file ${join(tmp, "out", "d4-key.pem")}`,
      ),
    ];
    mkdirSync(join(tmp, "out"), { recursive: true });
    const file = join(tempDir("wile-e2e-batch-file-"), "certs.txt");
    writeFileSync(file, `${lines.join("\n")}\n`);
    const args = ["issue", "--batch", file, "-w", env.webroot, ...caArgs(), "--parallel", "4", "--json"];
    const r = await runWile(args, { home });
    assert.equal(r.code, 1, dump(r));
    const out = jsonLines(r.stdout);
    const summary = out.pop() as Record<string, unknown>;
    assert.deepEqual([summary.issued, summary.skipped, summary.failed], [9, 0, 1], dump(r));
    const byName = new Map(out.map((o) => [o.name, o]));
    assert.equal(out.length, 10);
    const failing = byName.get("failing.batch.test");
    assert.equal(failing?.status, "failed", dump(r));
    assert.equal(failing?.line, 7);
    assert.match(r.stderr, /line 7 \(failing\.batch\.test\): /);
    assert.equal(existsSync(certFiles(home, "failing.batch.test").cert), false);
    const serials = new Map<string, string>();
    for (const o of out) {
      if (o.name === "failing.batch.test") continue;
      assert.equal(o.status, "issued", JSON.stringify(o));
      const name = o.name as string;
      assert.equal(lines[(o.line as number) - 1]?.startsWith(name), true, `line ${o.line} is ${name}'s`);
      const serial = verified(home, name);
      assert.equal(o.serial, serial);
      serials.set(name, serial);
      assert.deepEqual(sanNames(certFiles(home, name).cert).sort(), (o.domains as string[]).slice().sort());
    }
    const renewal = (name: string) => JSON.parse(readFileSync(certFiles(home, name).renewal, "utf8"));
    assert.deepEqual(renewal("a.batch.test").challenge.webroots, {
      "a.batch.test": site("a"),
      "www.a.batch.test": site("a"),
    });
    assert.equal(renewal("shop.b.batch.test").keyType, "ec-384");
    assert.deepEqual(renewal("d3.batch.test").challenge.webroots, { "d3.batch.test": env.webroot });
    // The line's deploy ran, and only for its certificate.
    assert.equal(
      readFileSync(join(tmp, "out", "d4-cert.pem"), "utf8"),
      readFileSync(certFiles(home, "d4.batch.test").cert, "utf8"),
    );
    assert.deepEqual(
      renewal("d4.batch.test").deploy.map((d: { kind: string }) => d.kind),
      ["files"],
    );
    assert.deepEqual(renewal("d3.batch.test").deploy, []);

    // The next day: the same file, with a name added to line 6. Only that line is ordered.
    lines[5] = line(["c.batch.test", "www.c.batch.test"], `-w ${site("c")}`);
    writeFileSync(file, `${lines.join("\n")}\n`);
    const again = await runWile(args, { home });
    assert.equal(again.code, 1, dump(again));
    const out2 = jsonLines(again.stdout);
    const summary2 = out2.pop() as Record<string, unknown>;
    assert.deepEqual([summary2.issued, summary2.skipped, summary2.failed], [1, 8, 1], dump(again));
    for (const o of out2) {
      const name = o.name as string;
      if (name === "c.batch.test") {
        assert.equal(o.status, "issued");
        assert.notEqual(verified(home, name), serials.get(name));
        assert.deepEqual(sanNames(certFiles(home, name).cert).sort(), ["c.batch.test", "www.c.batch.test"]);
      } else if (name !== "failing.batch.test") {
        assert.equal(o.status, "skipped", JSON.stringify(o));
        assert.match(o.reason as string, /not due/);
        assert.equal(serialHex(certFiles(home, name).cert), serials.get(name));
      }
    }
  });

  it("--standalone lines, 3 at a time, share wile's one listener on the port", async () => {
    const home = join(tempDir("wile-e2e-batch-home-"), "wile");
    const names = ["sa1.batch.test", "sa2.batch.test", "sa3.batch.test"];
    const input = names.map((n) => `${n} --resolve ${n}:${vaPort}:127.0.0.1`).join("\n");
    const r = await runWile(
      [
        "issue",
        "--batch",
        "-",
        "--standalone",
        "--http-port",
        String(vaPort),
        "--server",
        sa.directoryUrl,
      ].concat(["--ca-bundle", sa.caBundle, "--parallel", "3", "--json"]),
      { home, input },
    );
    assert.equal(r.code, 0, dump(r));
    const out = jsonLines(r.stdout);
    assert.deepEqual(out.pop(), {
      summary: "3 certificates: 3 issued, 0 skipped (not due), 0 failed",
      issued: 3,
      skipped: 0,
      failed: 0,
    });
    assert.deepEqual(
      out.map((o) => o.status),
      ["issued", "issued", "issued"],
    );
  });

  it("reads the lines from stdin with -", async () => {
    const home = join(tempDir("wile-e2e-batch-home-"), "wile");
    const input = `${line(["s1.batch.test"])}\n${line(["s2.a.batch.test"], `-w ${site("a")}`)}\n`;
    const r = await runWile(["issue", "--batch", "-", "-w", env.webroot, ...caArgs()], { home, input });
    assert.equal(r.code, 0, dump(r));
    assert.match(r.stdout, /^issued +line 1 s1\.batch\.test: serial /m);
    assert.match(r.stdout, /^issued +line 2 s2\.a\.batch\.test: serial /m);
    assert.match(r.stdout, /2 certificates: 2 issued, 0 skipped \(not due\), 0 failed/);
    verified(home, "s1.batch.test");
    verified(home, "s2.a.batch.test");
  });
});
