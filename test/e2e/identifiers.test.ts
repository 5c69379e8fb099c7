/**
 * End to end: IP address identifiers (RFC 8738) next to DNS names, and --profile against a CA
 * without profiles (Pebble 2.4.0), which must fail before any account or order is made.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { certText, keyMatchesCert } from "../helpers/certs";
import { certFiles, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;

before(async () => {
  env = await startTestEnv({});
  home = join(tempDir("wile-e2e-ids-"), "wile");
});

after(async () => {
  await env?.stop();
});

describe("identifiers and profiles", () => {
  it("issues for an IP address (an ip identifier, validated over http-01) together with a name", async () => {
    const r = await runWile(issueArgs(env, ["127.0.0.1", "ip.example"], ["--json"]), { home });
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, "127.0.0.1");
    assert.match(certText(f.cert), /IP Address:127\.0\.0\.1/);
    assert.match(certText(f.cert), /DNS:ip\.example/);
    assert.ok(keyMatchesCert(f.privkey, f.cert).match);
    const cfg = JSON.parse(readFileSync(f.renewal, "utf8"));
    assert.deepEqual(cfg.identifiers, [
      { type: "ip", value: "127.0.0.1" },
      { type: "dns", value: "ip.example" },
    ]);
    assert.deepEqual(JSON.parse(r.stdout).domains, ["127.0.0.1", "ip.example"]);
  });

  it("--profile that the CA does not offer fails before an account is registered", async () => {
    const fresh = join(tempDir("wile-e2e-profile-"), "wile");
    const r = await runWile(issueArgs(env, ["profile.example"], ["--profile", "shortlived"]), {
      home: fresh,
    });
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /the CA offers no profiles, so --profile shortlived cannot be used/);
    assert.equal(existsSync(join(fresh, "accounts")), false, "no account key or registration");
    const bad = await runWile(issueArgs(env, ["profile.example"], ["--profile", "no spaces"]), {
      home: fresh,
    });
    assert.equal(bad.code, 2, dump(bad));
  });

  it("the default contact from wile config --email is used when issue has no --email", async () => {
    const fresh = join(tempDir("wile-e2e-email-"), "wile");
    const set = await runWile(["config", "--email", "ops@example.org"], { home: fresh });
    assert.equal(set.code, 0, dump(set));
    const r = await runWile(issueArgs(env, ["contact.example"]), { home: fresh });
    assert.equal(r.code, 0, dump(r));
    const accounts = join(fresh, "accounts");
    const ca = readdirSync(accounts)[0] as string;
    const record = JSON.parse(readFileSync(join(accounts, ca, "default", "account.json"), "utf8"));
    assert.deepEqual(record.contact, ["ops@example.org"]);
  });
});
