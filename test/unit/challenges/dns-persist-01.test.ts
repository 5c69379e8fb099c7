/**
 * dns-persist-01 (draft-ietf-acme-dns-persist-02): the record wile prints, the hashed accounturi
 * against the draft's own test vectors (10.2), the issue-value parser (RFC 8659 4.2), the check of
 * what DNS serves as the CA will judge it (4.2, 4.3.2), the directory and challenge fields (3.1,
 * 3.2), and the solver (writes nothing, fails with the record to create).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChallengeContext, Solver } from "../../../src/acme/solver";
import {
  acceptedAccountUris,
  challengeIssuers,
  checkPersistRecords,
  DnsPersistSolver,
  hashedAccountUri,
  type PersistWant,
  parseIssueValue,
  persistDirectoryInfo,
  persistRecordName,
  persistRecordValue,
  persistZoneLine,
  recordAccountUri,
  type WaitForTxt,
} from "../../../src/challenges/dns-persist-01";
import { parsePersistUntil, recordNames } from "../../../src/cli/commands/dns-persist";
import { pairNamesWithWebroots } from "../../../src/cli/options";
import { solversFor } from "../../../src/flow/solvers";
import { challengeType, parseRenewalConfig } from "../../../src/store/renewal";
import { UsageError, WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { renewalConfig } from "../../helpers/renewal";

const ACCOUNT = "https://ca.example/acct/123";
const THUMB = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
const NOW = Date.UTC(2026, 10, 29);

describe("the record wile prints", () => {
  test("name and value as the draft's examples write them", () => {
    assert.equal(persistRecordName("example.com"), "_validation-persist.example.com");
    assert.equal(persistRecordName("*.Example.COM."), "_validation-persist.example.com");
    assert.equal(
      persistRecordValue({ issuerDomainName: "authority.example", accountUri: ACCOUNT, wildcard: false }),
      "authority.example; accounturi=https://ca.example/acct/123",
    );
    assert.equal(
      persistRecordValue({
        issuerDomainName: "authority.example",
        accountUri: ACCOUNT,
        wildcard: true,
        persistUntil: 1721952000,
      }),
      "authority.example; accounturi=https://ca.example/acct/123; policy=wildcard; persistUntil=1721952000",
    );
  });

  test("a zone-file line; a value over 255 octets is split into strings of at most 255", () => {
    assert.equal(
      persistZoneLine("_validation-persist.example.com", "ca.example; accounturi=https://x/1"),
      '_validation-persist.example.com. IN TXT "ca.example; accounturi=https://x/1"',
    );
    const long = `ca.example; accounturi=https://ca.example/acct/${"7".repeat(300)}`;
    const line = persistZoneLine("_validation-persist.example.com", long);
    const strings = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1] as string);
    assert.equal(strings.length, 2);
    assert.ok(strings.every((s) => s.length <= 255));
    assert.equal(strings.join(""), long);
    assert.match(line, /^_validation-persist\.example\.com\. IN TXT \( "/);
  });
});

describe("draft -02 4.1: the hashed accounturi", () => {
  const prefix = "https://ca.example/account-hash/";
  test("the draft's test vector for example.com (10.2)", () => {
    assert.equal(
      hashedAccountUri(prefix, "example.com", THUMB, ACCOUNT),
      "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw",
    );
  });
  test("the draft's test vector for the domain-omitted form (*)", () => {
    assert.equal(
      hashedAccountUri(prefix, "*", THUMB, ACCOUNT),
      "https://ca.example/account-hash/sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug",
    );
  });
  test("a CA with accountHashPrefix gets the hashed form, bound to the record's own name", () => {
    const me = { url: ACCOUNT, thumbprint: THUMB };
    assert.equal(
      recordAccountUri({ accountHashPrefix: prefix }, "*.EXAMPLE.com", me),
      hashedAccountUri(prefix, "example.com", THUMB, ACCOUNT),
    );
    assert.deepEqual(acceptedAccountUris({ accountHashPrefix: prefix }, "example.com", me), [
      hashedAccountUri(prefix, "example.com", THUMB, ACCOUNT),
      hashedAccountUri(prefix, "*", THUMB, ACCOUNT),
    ]);
  });
  test("a CA without one (drafts -00/-01, Let's Encrypt's first deployment) gets the account URL", () => {
    const me = { url: ACCOUNT, thumbprint: THUMB };
    assert.equal(recordAccountUri({ accountHashPrefix: undefined }, "example.com", me), ACCOUNT);
    assert.deepEqual(acceptedAccountUris({ accountHashPrefix: undefined }, "example.com", me), [ACCOUNT]);
  });
});

describe("RFC 8659 4.2 issue-value", () => {
  test("extra spaces and tabs around every part; tags are case-insensitive", () => {
    const v = parseIssueValue(" \tca.example ;\taccounturi = https://x/1 ;POLICY=Wildcard  ");
    assert.ok(typeof v !== "string", String(v));
    assert.equal(v.issuerDomainName, "ca.example");
    assert.equal(v.params.get("accounturi"), "https://x/1");
    assert.equal(v.params.get("policy"), "Wildcard");
  });
  test("unknown parameters are kept (and ignored by the check)", () => {
    const v = parseIssueValue("ca.example; future-thing=1; accounturi=https://x/1");
    assert.ok(typeof v !== "string");
    assert.equal(v.params.get("future-thing"), "1");
  });
  test("malformed: a duplicate tag, a part without =, a space inside a value", () => {
    assert.match(String(parseIssueValue("ca.example; accounturi=a; AccountURI=b")), /twice/);
    assert.match(String(parseIssueValue("ca.example; accounturi")), /not tag=value/);
    assert.match(String(parseIssueValue("ca.example; accounturi=a b")), /not tag=value/);
  });
});

describe("draft -02 4.2: does DNS hold a record the CA will take?", () => {
  const want = (over: Partial<PersistWant> = {}): PersistWant => ({
    issuers: ["authority.example"],
    accountUris: [ACCOUNT],
    wildcard: false,
    now: NOW,
    ...over,
  });
  const rec = (extra = "") => `authority.example; accounturi=${ACCOUNT}${extra}`;

  test("the right record passes, among records for other CAs", () => {
    assert.equal(checkPersistRecords([`other.example; accounturi=${ACCOUNT}`, rec()], want()), undefined);
  });
  test("the issuer domain name matches case-insensitively (and with a trailing dot)", () => {
    assert.equal(checkPersistRecords([`Authority.EXAMPLE.; accounturi=${ACCOUNT}`], want()), undefined);
  });
  test("accounturi is compared exactly (RFC 3986 6.2.1 simple string comparison)", () => {
    assert.match(
      String(checkPersistRecords([`authority.example; accounturi=${ACCOUNT.toUpperCase()}`], want())),
      /names another account/,
    );
    assert.match(
      String(checkPersistRecords([`authority.example; accounturi=${ACCOUNT}/`], want())),
      /names another account/,
    );
    assert.match(
      String(checkPersistRecords(["authority.example; policy=wildcard"], want())),
      /no accounturi/,
    );
  });
  test("a wildcard needs policy=wildcard (any case); a plain name does not", () => {
    assert.match(String(checkPersistRecords([rec()], want({ wildcard: true }))), /lacks policy=wildcard/);
    assert.equal(checkPersistRecords([rec("; policy=WILDCARD")], want({ wildcard: true })), undefined);
    assert.equal(checkPersistRecords([rec("; policy=wildcard")], want()), undefined);
    assert.match(
      String(checkPersistRecords([rec("; policy=subdomains")], want({ wildcard: true }))),
      /lacks policy=wildcard/,
    );
  });
  test("persistUntil: in the future passes; past or not an integer fails", () => {
    const future = Math.floor(NOW / 1000) + 86_400;
    const past = Math.floor(NOW / 1000) - 1;
    assert.equal(checkPersistRecords([rec(`; persistUntil=${future}`)], want()), undefined);
    assert.match(String(checkPersistRecords([rec(`; persistUntil=${past}`)], want())), /expired at/);
    assert.match(
      String(checkPersistRecords([rec("; persistUntil=2027-01-01")], want())),
      /not a Unix timestamp/,
    );
  });
  test("unknown parameters and extra spaces do not matter", () => {
    assert.equal(
      checkPersistRecords([`  authority.example ;  accounturi=${ACCOUNT} ;  color=blue `], want()),
      undefined,
    );
  });
  test("nothing there, only other CAs' records, or a malformed record: says which", () => {
    assert.equal(checkPersistRecords([], want()), "there is no TXT record");
    assert.match(
      String(checkPersistRecords([`other.example; accounturi=${ACCOUNT}`], want())),
      /no record names this CA \(authority\.example\)/,
    );
    assert.match(
      String(checkPersistRecords([rec("; policy=a; policy=b")], want())),
      /malformed: policy appears twice/,
    );
  });
});

describe("draft -02 3.1/3.2: issuer domain names from the directory and the challenge", () => {
  test("meta.issuerDomainNames first, then meta.caaIdentities (normalized), else none", () => {
    assert.deepEqual(
      persistDirectoryInfo({ issuerDomainNames: ["authority.example"], caaIdentities: ["other.example"] }),
      {
        issuerDomainNames: ["authority.example"],
        source: "issuerDomainNames",
        accountHashPrefix: undefined,
        caaIdentities: ["other.example"],
      },
    );
    assert.deepEqual(persistDirectoryInfo({ caaIdentities: ["LetsEncrypt.org."] }), {
      issuerDomainNames: ["letsencrypt.org"],
      source: "caaIdentities",
      accountHashPrefix: undefined,
    });
    assert.deepEqual(persistDirectoryInfo({ termsOfService: "x" }), {
      issuerDomainNames: [],
      source: "none",
      accountHashPrefix: undefined,
    });
    assert.equal(persistDirectoryInfo(undefined).source, "none");
  });
  test("a nonconforming directory array counts as absent (upper case, trailing dot, more than 10)", () => {
    assert.equal(persistDirectoryInfo({ issuerDomainNames: ["CA.example"] }).source, "none");
    assert.equal(persistDirectoryInfo({ issuerDomainNames: ["ca.example."] }).source, "none");
    const eleven = Array.from({ length: 11 }, (_, i) => `ca${i}.example`);
    assert.equal(persistDirectoryInfo({ issuerDomainNames: eleven }).source, "none");
  });
  test("accountHashPrefix is read when it is an http(s) URI", () => {
    assert.equal(
      persistDirectoryInfo({ accountHashPrefix: "https://ca.example/h/" }).accountHashPrefix,
      "https://ca.example/h/",
    );
    assert.equal(persistDirectoryInfo({ accountHashPrefix: "not a uri" }).accountHashPrefix, undefined);
  });
  const dir = persistDirectoryInfo({ issuerDomainNames: ["authority.example"] });
  test("the challenge's names: issuerDomainNames (-02) or issuer-domain-names (-00/-01)", () => {
    assert.deepEqual(challengeIssuers({ issuerDomainNames: ["authority.example", "b.example"] }, dir, "x"), [
      "authority.example",
      "b.example",
    ]);
    assert.deepEqual(challengeIssuers({ "issuer-domain-names": ["authority.example"] }, dir, "x"), [
      "authority.example",
    ]);
  });
  test("a malformed challenge is refused: empty, over 10, not normalized, or missing a directory name", () => {
    const refused = (c: Record<string, unknown>, re: RegExp) =>
      assert.throws(
        () => challengeIssuers(c, dir, "example.com"),
        (e: Error) => e instanceof WileError && re.test(e.message),
      );
    refused({}, /malformed: its issuerDomainNames/);
    refused({ issuerDomainNames: [] }, /malformed/);
    refused({ issuerDomainNames: Array.from({ length: 11 }, (_, i) => `c${i}.example`) }, /malformed/);
    refused({ issuerDomainNames: ["Authority.example"] }, /malformed/);
    refused({ issuerDomainNames: ["b.example"] }, /announces authority\.example, which it leaves out/);
    const withCaa = persistDirectoryInfo({
      issuerDomainNames: ["authority.example"],
      caaIdentities: ["authority.example"],
    });
    assert.throws(
      () => challengeIssuers({ issuerDomainNames: ["authority.example", "b.example"] }, withCaa, "x"),
      /it names b\.example, which the directory's caaIdentities do not/,
    );
  });
});

describe("DnsPersistSolver", () => {
  const ctx = (
    value: string,
    wildcard = false,
    challenge: Record<string, unknown> = {},
  ): ChallengeContext => ({
    identifier: { type: "dns", value },
    token: "",
    keyAuthorization: "",
    wildcard,
    challenge: {
      type: "dns-persist-01",
      url: "https://ca.example/chall/1",
      status: "pending",
      issuerDomainNames: ["authority.example"],
      ...challenge,
    },
  });
  /** The TXT lookup double: serves `zone`, asks `accept` once, fails as waitForTxt does. */
  function lookup(zone: Record<string, string[]>, asked: string[] = []): WaitForTxt {
    return async (fqdn, accept, opts) => {
      asked.push(`${fqdn} (${opts.what})`);
      const why = accept(zone[fqdn] ?? []);
      if (why) throw new WileError(`${opts.what} is not right at ${fqdn}: ${why}`);
    };
  }
  const solver = (zone: Record<string, string[]>, asked?: string[], prefix?: string) =>
    new DnsPersistSolver({
      account: () => ({ url: ACCOUNT, thumbprint: THUMB }),
      directory: () =>
        persistDirectoryInfo({
          issuerDomainNames: ["authority.example"],
          ...(prefix ? { accountHashPrefix: prefix } : {}),
        }),
      waitForTxt: lookup(zone, asked),
      logger: silentLogger,
      now: () => NOW,
    });

  test("present and cleanup write nothing; preflight checks _validation-persist.NAME", async () => {
    const asked: string[] = [];
    const s = solver(
      { "_validation-persist.example.com": [`authority.example; accounturi=${ACCOUNT}`] },
      asked,
    );
    await s.present();
    await s.preflight(ctx("example.com"));
    await s.cleanup();
    assert.deepEqual(asked, ["_validation-persist.example.com (the dns-persist-01 record for example.com)"]);
  });

  test("a missing record fails with the zone-file line and the value to create", async () => {
    await assert.rejects(s0().preflight(ctx("example.com", true)), (e: Error) => {
      assert.ok(e instanceof WileError && !(e instanceof UsageError));
      assert.match(e.message, /there is no TXT record/);
      assert.ok(
        e.message.includes(
          `_validation-persist.example.com. IN TXT "authority.example; accounturi=${ACCOUNT}; policy=wildcard"`,
        ),
        e.message,
      );
      assert.match(e.hint ?? "", /The CA was not asked to validate \*\.example\.com/);
      assert.match(e.hint ?? "", /wile dns-persist -d example\.com --wildcard/);
      return true;
    });
    function s0() {
      return solver({});
    }
  });

  test("a CA with accountHashPrefix: the hashed record passes, the plain account URL does not", async () => {
    const prefix = "https://ca.example/account-hash/";
    const hashed = hashedAccountUri(prefix, "example.com", THUMB, ACCOUNT);
    await solver(
      { "_validation-persist.example.com": [`authority.example; accounturi=${hashed}`] },
      [],
      prefix,
    ).preflight(ctx("example.com"));
    await assert.rejects(
      solver(
        { "_validation-persist.example.com": [`authority.example; accounturi=${ACCOUNT}`] },
        [],
        prefix,
      ).preflight(ctx("example.com")),
      (e: Error) => e.message.includes(`accounturi=${hashed}`) && /names another account/.test(e.message),
    );
  });

  test("a record that ends within 30 days passes with a warning", async () => {
    const warnings: string[] = [];
    const soon = Math.floor(NOW / 1000) + 10 * 86_400;
    const s = new DnsPersistSolver({
      account: () => ({ url: ACCOUNT, thumbprint: THUMB }),
      directory: () => persistDirectoryInfo({ issuerDomainNames: ["authority.example"] }),
      waitForTxt: lookup({
        "_validation-persist.example.com": [`authority.example; accounturi=${ACCOUNT}; persistUntil=${soon}`],
      }),
      logger: { ...silentLogger, warn: (m) => warnings.push(m) },
      now: () => NOW,
    });
    await s.preflight(ctx("example.com"));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /stops counting at 2026-12-09T00:00:00\.000Z \(persistUntil\)/);
  });

  test("a -01 challenge's own accounturi is what the CA expects", async () => {
    const other = "https://ca.example/acct/alias-9";
    await solver({ "_validation-persist.example.com": [`authority.example; accounturi=${other}`] }).preflight(
      ctx("example.com", false, { accounturi: other }),
    );
  });
});

describe("wile dns-persist input (checked before anything is contacted)", () => {
  test("--persist-until: a date, a time or Unix seconds, in the future", () => {
    assert.equal(parsePersistUntil("2027-06-30", NOW), Date.UTC(2027, 5, 30) / 1000);
    assert.equal(parsePersistUntil("2027-06-30T12:00:00Z", NOW), Date.UTC(2027, 5, 30, 12) / 1000);
    assert.equal(parsePersistUntil("2027-06-30T12:00:00+02:00", NOW), Date.UTC(2027, 5, 30, 10) / 1000);
    assert.equal(parsePersistUntil("1900000000", NOW), 1900000000);
    assert.equal(parsePersistUntil(undefined, NOW), undefined);
    assert.throws(
      () => parsePersistUntil("2020-01-01", NOW),
      (e: Error) => e instanceof UsageError && /in the past/.test(e.message),
    );
    assert.throws(
      () => parsePersistUntil("next year", NOW),
      (e: Error) => e instanceof UsageError && /not a date/.test(e.message),
    );
    assert.throws(() => parsePersistUntil("2027-13-45", NOW), UsageError);
  });
  test("names: *.NAME means NAME with policy=wildcard; one record per name; IP addresses refused", () => {
    assert.deepEqual(
      recordNames(
        [
          { type: "dns", value: "example.com" },
          { type: "dns", value: "*.example.com" },
          { type: "dns", value: "mail.example.com" },
        ],
        false,
      ),
      [
        { name: "example.com", wildcard: true },
        { name: "mail.example.com", wildcard: false },
      ],
    );
    assert.deepEqual(recordNames([{ type: "dns", value: "a.example" }], true), [
      { name: "a.example", wildcard: true },
    ]);
    assert.throws(() => recordNames([{ type: "ip", value: "192.0.2.1" }], false), UsageError);
    assert.throws(() => recordNames([], false), UsageError);
  });
});

describe("the choice on the command line and in renewal.json", () => {
  test("--challenge pairs with -d names like -w and --dns", () => {
    assert.deepEqual(
      pairNamesWithWebroots([
        "-d",
        "example.com",
        "-d",
        "*.example.com",
        "--challenge",
        "dns-persist-01",
        "-d",
        "www.example.com",
        "-w",
        "/srv/www",
      ]),
      [
        { name: "example.com", webroot: undefined, challenge: "dns-persist-01" },
        { name: "*.example.com", webroot: undefined, challenge: "dns-persist-01" },
        { name: "www.example.com", webroot: "/srv/www" },
      ],
    );
    assert.deepEqual(pairNamesWithWebroots(["--challenge=dns-persist-01", "-d", "a.example"]), [
      { name: "a.example", webroot: undefined, challenge: "dns-persist-01" },
    ]);
  });

  const cfg = (challenge: Record<string, unknown>) =>
    JSON.stringify({
      ...renewalConfig("example.com"),
      identifiers: [
        { type: "dns", value: "example.com" },
        { type: "dns", value: "*.example.com" },
      ],
      challenge,
    });
  test("challenge.persist round-trips; a wildcard may be proved by it", () => {
    const c = parseRenewalConfig(
      cfg({ type: "dns-persist-01", webroots: {}, persist: ["example.com", "*.example.com"] }),
      "renewal.json",
    );
    assert.deepEqual(c.challenge, {
      type: "dns-persist-01",
      webroots: {},
      persist: ["example.com", "*.example.com"],
    });
    assert.equal(challengeType({}, undefined, ["example.com"]), "dns-persist-01");
    assert.equal(challengeType({ a: "/srv" }, undefined, ["example.com"]), "mixed");
  });
  test("a bad challenge.persist names the field", () => {
    const bad = (challenge: Record<string, unknown>, re: RegExp) =>
      assert.throws(() => parseRenewalConfig(cfg(challenge), "renewal.json"), re);
    bad(
      { type: "dns-persist-01", webroots: {}, persist: "example.com" },
      /"challenge\.persist" must be an array/,
    );
    bad(
      { type: "mixed", webroots: { "example.com": "/srv" }, persist: ["example.com", "*.example.com"] },
      /"challenge\.persist" names example\.com, which has a webroot or DNS provider too/,
    );
    bad(
      { type: "mixed", webroots: { "example.com": "/srv" }, persist: [] },
      /\*\.example\.com" is missing \(a wildcard is proved with dns-01 or dns-persist-01\)/,
    );
  });
});

describe("solversFor: the names in challenge.persist share one dns-persist-01 solver", () => {
  test("a name and its wildcard get it; a webroot name gets http-01; made only when asked for", () => {
    let made = 0;
    const persist: Solver = { type: "dns-persist-01", present: async () => {}, cleanup: async () => {} };
    const webroot: Solver = { type: "http-01", present: async () => {}, cleanup: async () => {} };
    const solverFor = solversFor(
      {
        name: "_.example.com",
        challenge: {
          type: "mixed",
          webroots: { "www.example.com": "/srv" },
          persist: ["example.com", "*.example.com"],
        },
      },
      "renewal.json",
      {
        logger: silentLogger,
        env: {},
        check: async () => {},
        webroot: () => webroot,
        persist: () => {
          made++;
          return persist;
        },
      },
    );
    assert.equal(made, 0);
    assert.equal(solverFor({ type: "dns", value: "example.com" }, true), persist);
    assert.equal(solverFor({ type: "dns", value: "example.com" }, false), persist);
    assert.equal(solverFor({ type: "dns", value: "www.example.com" }, false), webroot);
    assert.equal(made, 1);
  });
});
