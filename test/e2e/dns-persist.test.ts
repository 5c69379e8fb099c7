/**
 * End to end against a real Pebble: `wile dns-persist` (draft-ietf-acme-dns-persist) and what wile
 * does with `--challenge dns-persist-01` at a CA that does not offer it. Debian's Pebble 2.4.0
 * announces no issuer domain name (its directory meta has neither issuerDomainNames nor
 * caaIdentities) and offers no dns-persist-01 challenge, so:
 * - without --issuer-domain-name wile says so, exit 1, and registers no account;
 * - with it, the record carries Pebble's real account URL (registered on the way);
 * - an issue with --challenge dns-persist-01 stops at the order, naming what Pebble offers.
 * The issue flow with a CA that offers dns-persist-01 is tested in
 * test/unit/flow/dns-persist-issue.test.ts (scripted CA); no proxy fakes it in front of Pebble.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let caArgs: string[];

before(async () => {
  env = await startTestEnv();
  caArgs = ["--server", env.directoryUrl, "--ca-bundle", env.caBundle];
});

after(async () => {
  await env?.stop();
});

const newHome = () => join(tempDir("wile-e2e-persist-"), "wile");
const wile = (args: string[], home: string) => runWile(args, { home, timeoutMs: 30_000 });
const accountsDir = (home: string) => join(home, "accounts");
const accountUrl = (home: string) =>
  (
    JSON.parse(
      readFileSync(
        join(accountsDir(home), `127.0.0.1_${new URL(env.directoryUrl).port}`, "default", "account.json"),
        "utf8",
      ),
    ) as { url: string }
  ).url;

describe("wile dns-persist against Pebble", () => {
  it("Pebble announces no issuer domain name: exit 1, says so, registers nothing", async () => {
    const home = newHome();
    const r = await wile(["dns-persist", "-d", "example.test", "--wildcard", ...caArgs], home);
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /announces no issuer domain name for dns-persist-01/);
    assert.match(r.stderr, /--issuer-domain-name NAME/);
    assert.equal(r.stdout, "");
    assert.equal(existsSync(accountsDir(home)), false, "no account was registered");
  });

  it("with --issuer-domain-name: the record names Pebble's account URL; --json gives the same", async () => {
    const home = newHome();
    const r = await wile(
      ["dns-persist", "-d", "example.test", "--wildcard", "--issuer-domain-name", "Pebble.Test", ...caArgs],
      home,
    );
    assert.equal(r.code, 0, dump(r));
    const url = accountUrl(home);
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/my-account\/\w+$/);
    const value = `pebble.test; accounturi=${url}; policy=wildcard`;
    assert.deepEqual(r.stdout.trimEnd().split("\n"), [
      `_validation-persist.example.test. IN TXT "${value}"`,
      "; name:  _validation-persist.example.test",
      `; value: ${value}`,
    ]);
    assert.match(r.stderr, /Registered account/);

    const until = "2030-01-01";
    const j = await wile(
      [
        "dns-persist",
        "-d",
        "example.test",
        "-d",
        "*.mail.example.test",
        "--persist-until",
        until,
        "--issuer-domain-name",
        "pebble.test",
        "--json",
        ...caArgs,
      ],
      home,
    );
    assert.equal(j.code, 0, dump(j));
    assert.doesNotMatch(j.stderr, /Registered account/, "the account is reused");
    const doc = JSON.parse(j.stdout);
    assert.equal(doc.account, url);
    assert.equal(doc.issuerDomainNamesFrom, "none");
    assert.equal(doc.accountUriForm, "account-url");
    assert.equal(doc.persistUntil, Date.UTC(2030, 0, 1) / 1000);
    assert.deepEqual(
      doc.records.map((x: { fqdn: string; value: string }) => [x.fqdn, x.value]),
      [
        ["_validation-persist.example.test", `pebble.test; accounturi=${url}; persistUntil=1893456000`],
        [
          "_validation-persist.mail.example.test",
          `pebble.test; accounturi=${url}; policy=wildcard; persistUntil=1893456000`,
        ],
      ],
    );
  });

  it("issue --challenge dns-persist-01: Pebble does not offer it; wile stops at the order (exit 1)", async () => {
    const home = newHome();
    const r = await wile(["issue", "-d", "*.example.test", "--challenge", "dns-persist-01", ...caArgs], home);
    assert.equal(r.code, 1, dump(r));
    assert.match(
      r.stderr,
      /the CA does not offer dns-persist-01 for \*\.example\.test \(it offers: dns-01\)/,
    );
    assert.equal(existsSync(join(home, "certs", "_.example.test", "cert.pem")), false);
  });
});

describe("bad input exits 2 before anything is contacted", () => {
  // A CA address where nothing listens: contacting it would be exit 1, not 2.
  const nowhere = ["--server", "https://127.0.0.1:9/dir"];
  const cases: Array<[string, string[], RegExp]> = [
    ["a bad name", ["dns-persist", "-d", "exa mple.test"], /exa mple\.test/],
    ["an IP address", ["dns-persist", "-d", "192.0.2.1"], /dns-persist-01 proves DNS names only/],
    [
      "a date in the past",
      ["dns-persist", "-d", "example.test", "--persist-until", "2001-01-01"],
      /in the past/,
    ],
    ["not a date", ["dns-persist", "-d", "example.test", "--persist-until", "soon"], /is not a date/],
    ["no name", ["dns-persist", "--wildcard"], /no name given/],
    ["issue --challenge http-01", ["issue", "-d", "example.test", "--challenge", "http-01"], /-w DIR/],
    [
      "issue --challenge dns-persist-01 for an IP",
      ["issue", "-d", "192.0.2.1", "--challenge", "dns-persist-01"],
      /proves DNS names only/,
    ],
  ];
  for (const [what, args, re] of cases) {
    it(what, async () => {
      const r = await wile([...args, ...nowhere], newHome());
      assert.equal(r.code, 2, dump(r));
      assert.match(r.stderr, re);
    });
  }
});
