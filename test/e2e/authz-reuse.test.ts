/**
 * Authorizations that are already valid (RFC 8555 section 7.1.4: a new order may list them) must be
 * accepted without a challenge. Pebble started with PEBBLE_AUTHZREUSE=100 always reuses them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { keyMatchesCert, sanNames, serialHex, verifyChain } from "../helpers/certs";
import { certFiles, issueArgs, pebbleFetches } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "100" } });
  home = join(tempDir("wile-e2e-reuse-"), "wile");
});

after(async () => {
  await env?.stop();
});

describe("issuance with PEBBLE_AUTHZREUSE=100 (already-valid authorizations)", () => {
  const name = "reuse.example";
  let firstSerial = "";

  it("issues a first certificate (authorization validated over http-01)", async () => {
    const r = await runWile(issueArgs(env, [name]), { home });
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, name);
    firstSerial = serialHex(f.cert);
    assert.ok(pebbleFetches(env, name).length > 0, "Pebble's VA should have validated the first order");
  });

  it("issues again with --force on the reused, already valid authorization", async () => {
    const fetches = pebbleFetches(env, name).length;
    const r = await runWile(issueArgs(env, [name], ["--force"]), { home });
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, name);
    assert.notEqual(serialHex(f.cert), firstSerial, "a new certificate");
    assert.deepEqual(sanNames(f.cert), [name]);
    assert.ok(keyMatchesCert(f.privkey, f.cert).match, "key matches certificate");
    assert.match(verifyChain(await env.pebbleRoot(), f.chain, f.cert, env.tmp), /: OK$/);
    assert.equal(
      pebbleFetches(env, name).length,
      fetches,
      "no new validation: Pebble handed back the valid authorization and wile used it as is",
    );
  });
});
