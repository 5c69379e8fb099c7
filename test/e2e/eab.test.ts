/**
 * External account binding (RFC 8555 section 7.3.4) against a Pebble that requires it.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { filesUnder, keyMatchesCert, sanNames } from "../helpers/certs";
import { certFiles, hasStackTrace, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
const kid = "kid-wile-1";
// Starting with "-", as one base64url key in 64 does: the option must still take it as its value.
const hmac = `-${randomBytes(32).toString("base64url").slice(1)}`;

before(async () => {
  env = await startTestEnv({ eab: { [kid]: hmac } });
});

after(async () => {
  await env?.stop();
});

describe("external account binding (section 7.3.4)", () => {
  it("fails without --eab-kid/--eab-hmac-key, saying the CA requires external account binding", async () => {
    const home = join(tempDir("wile-e2e-eab-"), "wile");
    const r = await runWile(issueArgs(env, ["noeab.example"]), { home });
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /external account/i, "message mentions external account binding");
    assert.match(r.stderr, /--eab-kid/, "message tells which options to use");
    assert.ok(!hasStackTrace(r.stderr), `stack trace without -v:\n${r.stderr}`);
    assert.deepEqual(filesUnder(join(home, "certs")), []);
  });

  it("registers with --eab-kid/--eab-hmac-key and issues, without the HMAC key reaching output or disk", async () => {
    const home = join(tempDir("wile-e2e-eab-"), "wile");
    const r = await runWile(
      issueArgs(env, ["eab.example"], ["--eab-kid", kid, "--eab-hmac-key", hmac, "-v"]),
      {
        home,
      },
    );
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, "eab.example");
    assert.deepEqual(sanNames(f.cert), ["eab.example"]);
    assert.ok(keyMatchesCert(f.privkey, f.cert).match);
    assert.ok(!(r.stdout + r.stderr).includes(hmac), "the EAB HMAC key leaked into the output");
    const { readFileSync } = await import("node:fs");
    for (const file of filesUnder(home)) {
      assert.ok(!readFileSync(file, "utf8").includes(hmac), `the EAB HMAC key was written to ${file}`);
    }
  });

  it("a second issuance finds the bound account by its key without the EAB pair", async () => {
    const home = join(tempDir("wile-e2e-eab-"), "wile");
    const first = await runWile(
      issueArgs(env, ["eab2.example"], ["--eab-kid", kid, "--eab-hmac-key", hmac]),
      {
        home,
      },
    );
    assert.equal(first.code, 0, dump(first));
    const second = await runWile(issueArgs(env, ["eab3.example"]), { home });
    assert.equal(second.code, 0, dump(second));
  });
});
