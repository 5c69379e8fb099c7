/**
 * End to end: `--dns acmesh:dns_test` runs an acme.sh dnsapi script (test/fixtures/acmesh: an
 * acme.sh stand-in and dns_test.sh, which adds and removes the TXT record with nsupdate on a real
 * BIND9), and Pebble validates the records BIND9 serves. One BIND9 and one Pebble for the file;
 * each test has its own wile home.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { queryTxt } from "../../src/dns/transport";
import { type Bind9, bind9Unavailable, startBind9, wileDnsArgs } from "../helpers/bind9";
import { filesUnder, sanNames, serialHex } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { certFiles } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, repoRoot, runWile, tempDir } from "../helpers/wile";

const skip = skipUnlessAvailable(bind9Unavailable());
const fixture = join(repoRoot, "test", "fixtures", "acmesh");

let bind: Bind9;
let env: TestEnv;
/** dns_test.sh's credentials, as an acme.sh user would export them. */
let credentials: Record<string, string>;
const started = performance.now();

const issue = (names: string[], extra: string[] = []) => {
  const args = ["issue"];
  for (const n of names) args.push("-d", n);
  return [...args, "--server", env.directoryUrl, "--ca-bundle", env.caBundle, ...wileDnsArgs(bind), ...extra];
};

/** The TXT values at `_acme-challenge.NAME` as BIND9 serves them. */
const txt = (name: string) => queryTxt(bind.server, `_acme-challenge.${name}`);

/** Files under `dir` (relative paths) whose bytes contain `secret`. */
function filesWith(dir: string, secret: string): string[] {
  return filesUnder(dir)
    .filter((f) => readFileSync(f).includes(secret))
    .map((f) => relative(dir, f));
}

/** No account was registered: nothing was contacted. */
function noAccount(home: string): void {
  assert.ok(!existsSync(join(home, "accounts")) || readdirSync(join(home, "accounts")).length === 0);
}

describe("--dns acmesh:dns_x against BIND9 and Pebble", { skip }, () => {
  before(async () => {
    bind = await startBind9({ zones: ["example.test", "other.test"] });
    env = await startTestEnv({ dnsServer: bind.serverArg, env: { PEBBLE_AUTHZREUSE: "0" } });
    credentials = {
      TEST_DNS_SERVER: bind.serverArg,
      TEST_DNS_KEY: `hmac-sha256:wile-test:${bind.secrets["wile-test"]}`,
    };
    console.log(`dns-acmesh: BIND9 and Pebble ready in ${Math.round(performance.now() - started)} ms`);
  });

  after(async () => {
    await env?.stop();
    await bind?.stop();
    console.log(`dns-acmesh: whole file ${Math.round(performance.now() - started)} ms`);
  });

  it("usage errors exit 2 before anything is contacted: no acme.sh, no such script, a bad name", async () => {
    const home = join(tempDir("wile-e2e-acmesh-"), "wile");
    const pebbleBefore = readFileSync(env.pebbleLog, "utf8").length;
    const cases: [string[], RegExp][] = [
      [
        ["--dns", "acmesh:dns_test", "--acmesh", join(home, "no-acme")],
        /--acmesh ".*no-acme": has no acme\.sh .*git clone --depth 1 https:\/\/github\.com\/acmesh-official\/acme\.sh/,
      ],
      [
        ["--dns", "acmesh:dns_test"],
        /acme\.sh is not at .*\/\.acme\.sh\/acme\.sh \(the default place\): install it/,
      ],
      [
        ["--dns", "acmesh:dns_nosuch", "--acmesh", fixture],
        /--dns acmesh:dns_nosuch: is not one of acme\.sh's dnsapi scripts: there is no .*\/dnsapi\/dns_nosuch\.sh/,
      ],
      [
        ["--dns", "acmesh:dns_Test", "--acmesh", fixture],
        /--dns acmesh:dns_Test: must be a dnsapi script's name/,
      ],
      [["--dns", "acmesh", "--acmesh", fixture], /--dns acmesh needs a script after a colon/],
    ];
    for (const [extra, message] of cases) {
      const r = await runWile(issue(["usage.example.test"], extra), { home, env: credentials });
      assert.equal(r.code, 2, dump(r));
      assert.match(r.stderr, message, dump(r));
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
    noAccount(home);
    assert.equal(readFileSync(env.pebbleLog, "utf8").length, pebbleBefore, "Pebble's log did not grow");
  });

  it("wildcard + apex through dns_test; credentials given once, saved, then renew --force without them", async () => {
    const home = join(tempDir("wile-e2e-acmesh-"), "wile");
    const r = await runWile(
      issue(["example.test", "*.example.test"], ["--dns", "acmesh:dns_test", "--acmesh", fixture, "-v"]),
      { home, env: credentials },
    );
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, "example.test");
    assert.deepEqual(sanNames(f.cert), ["*.example.test", "example.test"]);
    const renewal = JSON.parse(readFileSync(f.renewal, "utf8"));
    const entry = { provider: "acmesh", script: "dns_test", acmesh: fixture };
    assert.deepEqual(renewal.challenge.dns, { "example.test": entry, "*.example.test": entry });
    assert.deepEqual(await txt("example.test"), [], "records removed");

    // What dns_test.sh saved with _saveaccountconf_mutable: in wile's home, 0600, nowhere else.
    const conf = join(home, "dns", "acmesh", "account.conf");
    const saved = readFileSync(conf, "utf8");
    assert.match(saved, new RegExp(`^SAVED_TEST_DNS_SERVER='${bind.serverArg}'$`, "m"));
    assert.ok(saved.includes(`SAVED_TEST_DNS_KEY='${credentials.TEST_DNS_KEY}'`));
    assert.equal(statSync(conf).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, "dns", "acmesh")).mode & 0o777, 0o700);
    const secret = bind.secrets["wile-test"] as string;
    assert.deepEqual(filesWith(home, secret), ["dns/acmesh/account.conf"]);
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
    assert.ok(!existsSync(join(fixture, "account.conf")), "nothing written next to acme.sh");

    // Renewal: no credentials in the environment, the saved ones are used.
    const serial = serialHex(f.cert);
    const renewed = await runWile(["renew", "example.test", "--force"], { home });
    assert.equal(renewed.code, 0, dump(renewed));
    assert.notEqual(serialHex(f.cert), serial, "a new certificate");
    assert.deepEqual(await txt("example.test"), [], "records removed after the renewal");
    assert.ok(!renewed.stderr.includes(secret));
  });

  it("an operator moving from acme.sh: the values in acme.sh's account.conf are used (and copied, acme.sh's file untouched)", async () => {
    const home = join(tempDir("wile-e2e-acmesh-"), "wile");
    const acmeHome = join(tempDir("wile-e2e-acmesh-install-"), ".acme.sh");
    cpSync(fixture, acmeHome, { recursive: true });
    const theirs = `LOG_FILE='${acmeHome}/acme.sh.log'\nSAVED_TEST_DNS_SERVER='${credentials.TEST_DNS_SERVER}'\nSAVED_TEST_DNS_KEY='${credentials.TEST_DNS_KEY}'\n`;
    writeFileSync(join(acmeHome, "account.conf"), theirs, { mode: 0o600 });
    const r = await runWile(issue(["*.other.test"], ["--dns", "acmesh:dns_test"]), {
      home,
      env: { LE_WORKING_DIR: acmeHome },
    });
    assert.equal(r.code, 0, dump(r));
    assert.match(
      r.stderr,
      /Copied SAVED_TEST_DNS_SERVER, SAVED_TEST_DNS_KEY from .*\/\.acme\.sh\/account\.conf/,
    );
    assert.deepEqual(sanNames(certFiles(home, "_.other.test").cert), ["*.other.test"]);
    assert.equal(
      readFileSync(join(home, "dns", "acmesh", "account.conf"), "utf8"),
      `SAVED_TEST_DNS_SERVER='${credentials.TEST_DNS_SERVER}'\nSAVED_TEST_DNS_KEY='${credentials.TEST_DNS_KEY}'\n`,
    );
    assert.equal(readFileSync(join(acmeHome, "account.conf"), "utf8"), theirs);
    assert.equal(
      JSON.parse(readFileSync(certFiles(home, "_.other.test").renewal, "utf8")).challenge.dns["*.other.test"]
        .acmesh,
      acmeHome,
      "$LE_WORKING_DIR kept for renewals from cron",
    );
    assert.deepEqual(await txt("other.test"), []);
  });

  it("a failing dnsapi script fails the issue with its own message, and nothing is left in the zone", async () => {
    const home = join(tempDir("wile-e2e-acmesh-"), "wile");
    // BIND9 serves example.test, not notserved.test: dns_test adds the first record, then nsupdate is
    // refused for the second and the script says so with _err and returns 1.
    const r = await runWile(
      issue(
        ["fail.example.test", "www.notserved.test"],
        ["--dns", "acmesh:dns_test", "--acmesh", fixture, "-v"],
      ),
      { home, env: credentials },
    );
    assert.equal(r.code, 1, dump(r));
    assert.match(
      r.stderr,
      /acme\.sh's dns_test_add _acme-challenge\.www\.notserved\.test failed \(exit 1\): .*(nsupdate: |Cannot add the TXT record)/,
      dump(r),
    );
    assert.deepEqual(await txt("fail.example.test"), [], "the record added first was removed");
    assert.ok(!r.stderr.includes(bind.secrets["wile-test"] as string), "-v shows no credential");
    assert.ok(!existsSync(certFiles(home, "fail.example.test").cert));
  });
});
