/**
 * RFC 8555 section 6.5: a badNonce error is retried with a fresh nonce. Pebble started with
 * PEBBLE_WFE_NONCEREJECT=50 rejects half of the good nonces it receives.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { keyMatchesCert, sanNames, verifyChain } from "../helpers/certs";
import { certFiles, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_WFE_NONCEREJECT: "50" } });
  home = join(tempDir("wile-e2e-nonce-"), "wile");
});

after(async () => {
  await env?.stop();
});

async function issueAndCheck(names: string[]): Promise<void> {
  const r = await runWile(issueArgs(env, names), { home });
  assert.equal(r.code, 0, dump(r));
  const f = certFiles(home, names[0] as string);
  assert.deepEqual(sanNames(f.cert), [...names].sort());
  assert.ok(keyMatchesCert(f.privkey, f.cert).match, "key matches certificate");
  assert.match(verifyChain(await env.pebbleRoot(), f.chain, f.cert, env.tmp), /: OK$/);
}

describe("issuance with PEBBLE_WFE_NONCEREJECT=50 (badNonce retried, section 6.5)", () => {
  it("still issues while registering a new account", async () => {
    await issueAndCheck(["nonce.example"]);
  });

  it("still issues for two names with the existing account", async () => {
    await issueAndCheck(["nonce2.example", "www.nonce2.example"]);
  });
});
