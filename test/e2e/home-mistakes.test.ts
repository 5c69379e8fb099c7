/**
 * End to end, issue 10 finding 6: operator mistakes that used to end in "internal error ... This is
 * a bug in wile". Each now gets a message naming the path and the fix, and exit 2 (a usage or
 * configuration error: nothing was contacted, nothing changed; the --server here counts
 * connections and must see none). A read-only home and HOME=/nonexistent need a user that cannot
 * write there: as root (CI), wile runs as nobody (see other-user.ts).
 * (The 10 KB and numeric tokens are the CA's doing: the hostile-CA suite covers them. The
 * directory at the token's path and a dangling acme-challenge symlink inside the solver are in
 * test/unit/challenges/http-01-webroot.test.ts.)
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connectionCounter, hasStackTrace } from "../helpers/e2e";
import { isRoot, otherUserBin } from "../helpers/other-user";
import { dump, type RunResult, runWile, tempDir } from "../helpers/wile";

let ca: Awaited<ReturnType<typeof connectionCounter>>;
let base: string;
let webroot: string;

before(async () => {
  ca = await connectionCounter();
  base = tempDir("wile-e2e-home-mistakes-");
  chmodSync(base, 0o755);
  webroot = join(base, "www");
  mkdirSync(webroot, { mode: 0o777 });
  chmodSync(webroot, 0o777);
});

after(async () => {
  await ca?.close();
});

const issue = (name: string, w = webroot) => ["issue", "-d", name, "-w", w, "--server", ca.url];

function assertUsage(r: RunResult, path: string, what: RegExp): void {
  assert.equal(r.code, 2, dump(r));
  assert.ok(r.stderr.includes(path), `${path} is not named:\n${dump(r)}`);
  assert.match(r.stderr, what, dump(r));
  assert.match(r.stderr, /^hint: /m, dump(r));
  assert.doesNotMatch(r.stderr, /internal error|bug in wile/i, dump(r));
  assert.ok(!hasStackTrace(r.stderr), dump(r));
}

const seen: string[] = [];
function figure(item: string, command: string, r: RunResult): void {
  seen.push(`${item}/${command}`);
  console.log(`reliability: operator-mistake ${item} ${command} exit=${r.code}`);
}

describe("operator mistakes about the home and the webroot (finding 6)", () => {
  it("--home that is a file", async () => {
    const file = join(base, "home-file");
    writeFileSync(file, "not a directory\n");
    for (const args of [["list"], ["cron"], issue("a.example")]) {
      const r = await runWile([...args, "--home", file], { home: join(base, "unused") });
      assertUsage(r, file, /is a file, not a directory/);
      figure("home-is-a-file", args[0] as string, r);
    }
  });

  it("a read-only home", async () => {
    const home = join(base, "read-only-home");
    mkdirSync(home, { mode: 0o555 });
    chmodSync(home, 0o555); // as root: root's, so nobody cannot write it either
    const bin = otherUserBin();
    for (const args of [["cron"], issue("a.example"), ["renew", "--all"]]) {
      const r = await runWile(args, { home, ...(bin ? { bin } : {}) });
      assertUsage(r, home, /is not writable by user/);
      figure("read-only-home", args[0] as string, r);
    }
    // Reading needs no write access.
    const r = await runWile(["list"], { home, ...(bin ? { bin } : {}) });
    assert.equal(r.code, 0, dump(r));
  });

  it("HOME=/nonexistent without --home or WILE_HOME", async () => {
    if (isRoot) assert.ok(!existsSync("/nonexistent"), "/nonexistent exists on this machine");
    const bin = otherUserBin();
    for (const args of [["cron"], issue("a.example")]) {
      const r = await runWile(args, {
        home: "",
        env: { WILE_HOME: "", HOME: "/nonexistent" },
        ...(bin ? { bin } : {}),
      });
      assertUsage(r, "/nonexistent/.wile", /does not exist and \/ is not writable/);
      figure("HOME=/nonexistent", args[0] as string, r);
    }
    assert.ok(!existsSync("/nonexistent"));
  });

  it("a 240-character name (its lock file name would pass 255 bytes)", async () => {
    const name = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(40)}.example`;
    assert.equal(name.length, 240);
    const r = await runWile(issue(name), { home: join(base, "home-240") });
    assertUsage(r, name, /certificate name/);
    figure("240-character-name", "issue", r);
  });

  it("a dangling .well-known/acme-challenge symlink in the webroot", async () => {
    const w = join(base, "www-dangling");
    mkdirSync(join(w, ".well-known"), { recursive: true });
    symlinkSync("/nonexistent-acme-dir", join(w, ".well-known", "acme-challenge"));
    const r = await runWile(issue("a.example", w), { home: join(base, "home-dangling") });
    assertUsage(r, join(w, ".well-known", "acme-challenge"), /symbolic link to \/nonexistent-acme-dir/);
    figure("dangling-acme-challenge-symlink", "issue", r);
  });

  it("nothing was contacted", () => {
    assert.equal(ca.count(), 0);
    console.log(`reliability: operator-mistakes runs=${seen.length} exit2=${seen.length} contacted=0`);
  });
});
