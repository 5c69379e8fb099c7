/**
 * End to end, issue 10 finding 8: a run killed with -9 while its challenge file is in the webroot
 * used to leave the file there for good. wile now records what it puts into webroots in the home
 * (certs/<name>/webroot-files.json) before writing it, and the next `issue`, `renew` or `cron`
 * removes what a dead run recorded before it starts: only those files (and the directories it
 * made, when empty), never anything else in the webroot.
 *
 * The moment: with -v wile prints "Wrote <file>" right after writing the challenge file; SIGKILL
 * is sent then. The preflight that follows goes (--resolve) to a server that accepts and never
 * answers, so the run is certainly still waiting, file in place, when the signal arrives.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { forgetAuthorizations } from "../helpers/authz";
import { certDir, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, type RunResult, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;
let silent: Server;
let silentPort: number;
const held: Socket[] = [];
let challengeDir: string;
/** Files in the webroot that are not wile's, with their content. */
const unrelated: Record<string, string> = {};

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "0" } });
  silent = createServer((sock) => held.push(sock));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentPort = (silent.address() as { port: number }).port;
  home = join(tempDir("wile-e2e-leftovers-"), "wile");
  for (const name of ["renew.example", "cron.example"]) {
    const r = await runWile(issueArgs(env, [name]), { home });
    assert.equal(r.code, 0, dump(r));
  }
  // The kills below need a challenge: Pebble must not reuse these authorizations (see authz.ts).
  assert.equal(await forgetAuthorizations(env, home), 2, "valid authorizations deactivated");
  challengeDir = join(env.webroot, ".well-known", "acme-challenge");
  mkdirSync(challengeDir, { recursive: true });
  // Someone else's files, one named like a token: they must survive every run.
  unrelated[join(challengeDir, "notes.txt")] = "not wile's\n";
  unrelated[join(challengeDir, "QmFzZTY0VG9rZW5Ob3RXaWxlcw")] = "a token-like file wile never wrote\n";
  unrelated[join(env.webroot, "index.html")] = "<p>hello</p>\n";
  for (const [path, content] of Object.entries(unrelated)) writeFileSync(path, content);
});

after(async () => {
  for (const sock of held) sock.destroy();
  silent?.close();
  await env?.stop();
});

/** --resolve for a preflight that hangs (see above). */
const hanging = (name: string) => `${name}:${silentPort}:127.0.0.1`;

function editRenewal(name: string, edit: (v: Record<string, unknown>) => void): void {
  const file = join(certDir(home, name), "renewal.json");
  const v = JSON.parse(readFileSync(file, "utf8"));
  edit(v);
  writeFileSync(file, JSON.stringify(v));
}

/** Runs wile -v and kills it with SIGKILL once it has written a challenge file. */
async function killAfterWrite(args: string[]): Promise<{ r: RunResult; written: string }> {
  const r = await runWile([...args, "-v"], {
    home,
    interrupt: { when: /Wrote \S+acme-challenge\/\S+/, signal: "SIGKILL" },
  });
  assert.ok(r.interrupted, `no challenge file was written:\n${dump(r)}`);
  const written = /Wrote (\S+acme-challenge\/\S+)/.exec(r.stderr)?.[1] as string;
  assert.ok(existsSync(written), `the killed run left no file to clean up (${written}):\n${dump(r)}`);
  assert.doesNotMatch(r.stderr, /Validating /, "killed during the preflight, before the CA validated");
  return { r, written };
}

function assertUnrelatedKept(): void {
  for (const [path, content] of Object.entries(unrelated)) {
    assert.equal(readFileSync(path, "utf8"), content, `${path} was touched`);
  }
}

describe("challenge files left by a run killed with -9", () => {
  it("issue: the next issue of the name removes them (and the directories it made) first", async () => {
    // A fresh webroot: the killed run creates .well-known/acme-challenge itself.
    const webroot = tempDir("wile-e2e-leftovers-webroot-");
    writeFileSync(join(webroot, "index.html"), "mine\n");
    const name = "killed.example";
    const args = issueArgs(env, [name], ["--no-preflight"], webroot).filter((a) => a !== "--no-preflight");
    const { written } = await killAfterWrite([...args, "--resolve", hanging(name)]);
    assert.ok(written.startsWith(webroot));
    assert.ok(existsSync(join(certDir(home, name), "webroot-files.json")), "nothing recorded in the home");

    const r = await runWile(issueArgs(env, [name]), { home });
    assert.equal(r.code, 0, dump(r));
    assert.ok(!existsSync(written), `${written} is still there`);
    assert.deepEqual(readdirSync(webroot), ["index.html"], "the directories wile made are not gone");
    assert.equal(readFileSync(join(webroot, "index.html"), "utf8"), "mine\n");
    assert.ok(!existsSync(join(certDir(home, name), "webroot-files.json")), "the record is left");
    assertUnrelatedKept();
    console.log(`reliability: leftovers killed=issue next=issue removed=yes unrelated-kept=yes`);
  });

  for (const [next, args, code] of [
    ["renew", ["renew", "renew.example"], 3],
    ["cron", ["cron"], 0],
  ] as const) {
    it(`renew --force killed: the next ${next} removes them, though nothing is due`, async () => {
      const name = next === "cron" ? "cron.example" : "renew.example";
      editRenewal(name, (v) => {
        v.resolve = [hanging(name)];
      });
      const { written } = await killAfterWrite(["renew", name, "--force"]);
      editRenewal(name, (v) => {
        v.resolve = [env.resolveArg(name)];
      });
      const r = await runWile([...args], { home });
      assert.equal(r.code, code, dump(r));
      assert.ok(!existsSync(written), `${written} is still there`);
      assert.deepEqual(
        readdirSync(challengeDir).sort(),
        ["QmFzZTY0VG9rZW5Ob3RXaWxlcw", "notes.txt"],
        "the challenge directory holds more than the unrelated files",
      );
      assert.ok(!existsSync(join(certDir(home, name), "webroot-files.json")), "the record is left");
      assertUnrelatedKept();
      console.log(`reliability: leftovers killed=renew next=${next} removed=yes unrelated-kept=yes`);
    });
  }
});
