/**
 * The standalone binary (Node SEA, scripts/build-sea.mjs) runs a whole issuance. Without the binary
 * (or on a machine that cannot run it) the test is skipped locally and fails under CI.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { keyMatchesCert, sanNames, verifyChain } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { certFiles, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir, wileX64 } from "../helpers/wile";

const missing = !existsSync(wileX64)
  ? `${wileX64} is not built (npm run build:sea)`
  : process.arch !== "x64" && "this machine cannot run the x64 binary";
let env: TestEnv | undefined;

before(async () => {
  if (!missing) env = await startTestEnv();
});

after(async () => {
  await env?.stop();
});

describe("standalone binary dist/wile-linux-x64", () => {
  it("issues a certificate", { skip: skipUnlessAvailable(missing) }, async () => {
    assert.ok(env);
    const home = join(tempDir("wile-e2e-sea-"), "wile");
    const v = await runWile(["--version"], { home, bin: wileX64 });
    assert.equal(v.code, 0, dump(v));
    assert.match(v.stdout, /^wile \d/);
    const fromCjs = await runWile(["--version"], { home, bin: "" });
    assert.equal(
      v.stdout,
      fromCjs.stdout,
      "the binary embeds a different wile than dist/wile.cjs: rebuild it",
    );
    assert.equal(v.stderr, "", "no SEA warning or other noise on stderr");
    const r = await runWile(issueArgs(env, ["sea.example"]), { home, bin: wileX64 });
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, "sea.example");
    assert.deepEqual(sanNames(f.cert), ["sea.example"]);
    assert.ok(keyMatchesCert(f.privkey, f.cert).match);
    assert.match(verifyChain(await env.pebbleRoot(), f.chain, f.cert, env.tmp), /: OK$/);
  });
});
