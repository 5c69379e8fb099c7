/**
 * End to end: a key rollover interrupted after the new key was written (account.key.next) must
 * not break issuance: wile settles which key is the account's before signing with either.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;

before(async () => {
  env = await startTestEnv({});
  home = join(tempDir("wile-e2e-acct-rec-"), "wile");
});

after(async () => {
  await env?.stop();
});

/** A fresh P-256 key at `file`, made by openssl. */
function newKey(file: string): void {
  execFileSync("openssl", [
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    file,
  ]);
}

describe("interrupted key rollover", () => {
  it("a next key the CA never accepted is dropped and issuance goes on with the account's key", async () => {
    const first = await runWile(issueArgs(env, ["rec1.example"]), { home });
    assert.equal(first.code, 0, dump(first));
    const accounts = join(home, "accounts");
    const caDir = join(accounts, readdirSync(accounts)[0] as string, "default");
    const key = readFileSync(join(caDir, "account.key"), "utf8");
    const url = JSON.parse(readFileSync(join(caDir, "account.json"), "utf8")).url;
    // As if `wile account rollover` was killed before the CA answered.
    newKey(join(caDir, "account.key.next"));
    const second = await runWile(issueArgs(env, ["rec2.example"]), { home });
    assert.equal(second.code, 0, dump(second));
    assert.equal(existsSync(join(caDir, "account.key.next")), false, "the unaccepted key was removed");
    assert.equal(readFileSync(join(caDir, "account.key"), "utf8"), key, "the account key is unchanged");
    assert.equal(JSON.parse(readFileSync(join(caDir, "account.json"), "utf8")).url, url, "same account");
  });

  it("a CA that knows neither the key nor the next key: nothing is signed, both keys are kept", async () => {
    const h = join(tempDir("wile-e2e-acct-rec-"), "wile");
    const first = await runWile(issueArgs(env, ["rec3.example"]), { home: h });
    assert.equal(first.code, 0, dump(first));
    const accounts = join(h, "accounts");
    const caDir = join(accounts, readdirSync(accounts)[0] as string, "default");
    // Keys the CA has never seen, in both places (as if replaced by hand, or rolled over elsewhere).
    newKey(join(caDir, "account.key.new"));
    renameSync(join(caDir, "account.key.new"), join(caDir, "account.key"));
    newKey(join(caDir, "account.key.next"));
    const key = readFileSync(join(caDir, "account.key"), "utf8");
    const next = readFileSync(join(caDir, "account.key.next"), "utf8");
    const r = await runWile(issueArgs(env, ["rec3.example"], ["--force"]), { home: h });
    assert.equal(r.code, 1, dump(r));
    assert.match(
      r.stderr,
      /interrupted key rollover .* cannot be settled: the CA finds the account by neither/,
    );
    assert.equal(readFileSync(join(caDir, "account.key"), "utf8"), key, "account.key kept");
    assert.equal(readFileSync(join(caDir, "account.key.next"), "utf8"), next, "account.key.next kept");
  });
});
