/**
 * The whole issue flow with dns-persist-01 (issueFromConfig) against a scripted ACME CA on the
 * HTTPS double that offers dns-persist-01 (draft-ietf-acme-dns-persist-02 challenge objects), with a
 * TXT lookup double in place of DNS: the record is checked before the challenge is answered, a
 * missing or wrong record stops the order before the CA is asked to validate, the answer is `{}`,
 * renewal.json keeps the choice and `wile list` shows it. Debian's Pebble 2.4.0 does not offer
 * dns-persist-01, so this is where the flow is tested end to end.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import type { WaitForTxt } from "../../../src/challenges/dns-persist-01";
import { issueFromConfig } from "../../../src/flow/issue";
import { runMain } from "../../../src/main";
import type { RenewalConfig } from "../../../src/store/renewal";
import { UsageError, WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { acmeReply, type HttpsDouble, startHttpsDouble } from "../../helpers/https-double";
import { renewalConfig } from "../../helpers/renewal";
import { makeCa, signLeaf, type TestCa } from "../../helpers/test-ca";
import { tempDir } from "../../helpers/wile";

let double: HttpsDouble;
let base = "";
let caFile = "";
let testCa: TestCa;
/** What the CA was sent: "POST /chall/0 {}" and the like. */
const log: string[] = [];
const answered = new Set<string>();
let leafPem = "";
/** The CA refuses the record it finds (its own DNS view differs from wile's). */
let refuse = false;
const challengeStatus = (i: number) =>
  answered.has(`/chall/${i}`) ? (refuse ? "invalid" : "valid") : "pending";

const NAMES = ["example.com", "*.example.com"];

function payloadOf(body: string): unknown {
  const p = (JSON.parse(body) as { payload: string }).payload;
  return p === "" ? "" : JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
}

const challenge = (i: number) => ({
  type: "dns-persist-01",
  url: `${base}/chall/${i}`,
  status: challengeStatus(i),
  issuerDomainNames: ["authority.example"],
  ...(refuse && answered.has(`/chall/${i}`)
    ? { error: { type: "urn:ietf:params:acme:error:unauthorized", detail: "No valid TXT record found" } }
    : {}),
});
const authz = (i: number) => ({
  identifier: { type: "dns", value: "example.com" },
  status: challengeStatus(i),
  ...(i === 1 ? { wildcard: true } : {}),
  challenges: [
    { type: "http-01", url: `${base}/chall/h${i}`, token: "tok", status: "pending" },
    challenge(i),
  ],
});
const order = () => ({
  status: leafPem
    ? "valid"
    : refuse && answered.size > 0
      ? "invalid"
      : answered.size === 2
        ? "ready"
        : "pending",
  identifiers: NAMES.map((value) => ({ type: "dns", value })),
  authorizations: [`${base}/authz/0`, `${base}/authz/1`],
  finalize: `${base}/finalize`,
  ...(leafPem ? { certificate: `${base}/cert` } : {}),
});

before(async () => {
  double = await startHttpsDouble();
  base = double.base;
  const dir = tempDir("wile-persist-flow-");
  caFile = join(dir, "double-ca.pem");
  writeFileSync(caFile, double.ca);
  testCa = makeCa(dir, "wile test persist CA");
  double.route = (req, body, res) => {
    const url = req.url ?? "";
    if (url === "/dir") {
      return acmeReply(res, 200, {
        newNonce: `${base}/nonce`,
        newAccount: `${base}/acct`,
        newOrder: `${base}/order`,
        meta: { issuerDomainNames: ["authority.example"], caaIdentities: ["authority.example"] },
      });
    }
    if (url === "/nonce") return acmeReply(res, 200, undefined);
    const payload = payloadOf(body);
    log.push(`POST ${url} ${JSON.stringify(payload)}`);
    if (url === "/acct") {
      if ((payload as { onlyReturnExisting?: boolean }).onlyReturnExisting) {
        return acmeReply(res, 400, { type: "urn:ietf:params:acme:error:accountDoesNotExist", detail: "no" });
      }
      return acmeReply(res, 201, { status: "valid" }, { location: `${base}/acct/1` });
    }
    if (url === "/order") return acmeReply(res, 201, order(), { location: `${base}/order/1` });
    if (url === "/order/1") return acmeReply(res, 200, order());
    const a = /^\/authz\/(\d)$/.exec(url);
    if (a) return acmeReply(res, 200, authz(Number(a[1])));
    const c = /^\/chall\/(\d)$/.exec(url);
    if (c) {
      answered.add(url);
      return acmeReply(res, 200, challenge(Number(c[1])));
    }
    if (url === "/finalize") {
      const der = Buffer.from((payload as { csr: string }).csr, "base64url");
      const csrPem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE REQUEST-----\n`;
      leafPem = signLeaf(testCa, csrPem, { sans: NAMES.map((n) => `DNS:${n}`) });
      return acmeReply(res, 200, order());
    }
    if (url === "/cert") {
      return acmeReply(res, 200, leafPem + testCa.pem);
    }
    acmeReply(res, 404, { type: "urn:ietf:params:acme:error:malformed", detail: `no ${url}` });
  };
});

after(() => double.close());

beforeEach(() => {
  log.length = 0;
  answered.clear();
  leafPem = "";
  refuse = false;
});

function config(): RenewalConfig {
  return {
    ...renewalConfig("_.example.com"),
    identifiers: NAMES.map((value) => ({ type: "dns", value })),
    challenge: { type: "dns-persist-01", webroots: {}, persist: [...NAMES] },
    server: `${base}/dir`,
    caBundle: caFile,
  };
}

/** The TXT lookup double: serves `zone`; records each lookup. */
function dnsDouble(zone: Record<string, string[]>, asked: string[]): WaitForTxt {
  return async (fqdn, accept, opts) => {
    asked.push(fqdn);
    log.push(`LOOKUP ${fqdn}`);
    const why = accept(zone[fqdn] ?? []);
    if (why) throw new WileError(`${opts.what} is not in place at ${fqdn}: ${why}`);
  };
}

const account = () => `${base}/acct/1`;
const answers = () => log.filter((l) => l.startsWith("POST /chall/"));

describe("wile issue --challenge dns-persist-01 against a CA offering it", () => {
  test("no record: fails before any challenge is answered, printing the record to create", async () => {
    const home = tempDir("wile-persist-home-");
    const asked: string[] = [];
    await assert.rejects(
      issueFromConfig(config(), { home, logger: silentLogger, waitForTxt: dnsDouble({}, asked) }),
      (e: Error) => {
        assert.ok(e instanceof WileError && !(e instanceof UsageError), String(e));
        assert.match(e.message, /there is no TXT record/);
        assert.ok(
          e.message.includes(
            `_validation-persist.example.com. IN TXT "authority.example; accounturi=${account()}; policy=wildcard"`,
          ),
          e.message,
        );
        return true;
      },
    );
    assert.deepEqual(answers(), [], "the CA was not asked to validate");
    assert.ok(asked.includes("_validation-persist.example.com"));
  });

  test("a record without policy=wildcard does for example.com, not for *.example.com: nothing answered", async () => {
    const home = tempDir("wile-persist-home-");
    const zone = { "_validation-persist.example.com": [`authority.example; accounturi=${account()}`] };
    await assert.rejects(
      issueFromConfig(config(), { home, logger: silentLogger, waitForTxt: dnsDouble(zone, []) }),
      /\*\.example\.com[\s\S]*lacks policy=wildcard/,
    );
    assert.deepEqual(answers(), []);
  });

  test("the CA refuses the record after all: its problem, and a hint at wile dns-persist", async () => {
    refuse = true;
    const zone = {
      "_validation-persist.example.com": [`authority.example; accounturi=${account()}; policy=wildcard`],
    };
    await assert.rejects(
      issueFromConfig(config(), {
        home: tempDir("wile-persist-home-"),
        logger: silentLogger,
        waitForTxt: dnsDouble(zone, []),
      }),
      (e: Error) => {
        assert.ok(e instanceof WileError);
        assert.match(e.message, /example\.com \(dns-persist-01\): No valid TXT record found/);
        assert.match(e.hint ?? "", /For dns-persist-01: .*wile dns-persist -d NAME/);
        assert.doesNotMatch(e.hint ?? "", /For http-01/);
        return true;
      },
    );
  });

  test("the right record: both challenges answered with {}, issued, renewal.json and wile list say so", async () => {
    const home = tempDir("wile-persist-home-");
    const asked: string[] = [];
    const zone = {
      "_validation-persist.example.com": [
        "other-ca.example; accounturi=https://other/1",
        `authority.example; accounturi=${account()}; policy=wildcard`,
      ],
    };
    const result = await issueFromConfig(config(), {
      home,
      logger: silentLogger,
      waitForTxt: dnsDouble(zone, asked),
    });
    assert.equal(result.name, "_.example.com");
    assert.deepEqual(answers().sort(), ["POST /chall/0 {}", "POST /chall/1 {}"]);
    assert.ok(!log.some((l) => l.startsWith("POST /chall/h")), "the http-01 challenges were left alone");
    assert.deepEqual(asked, ["_validation-persist.example.com", "_validation-persist.example.com"]);
    // Checked before answered: both lookups come before the first answer.
    const firstAnswer = log.findIndex((l) => l.startsWith("POST /chall/"));
    assert.ok(log.lastIndexOf("LOOKUP _validation-persist.example.com") < firstAnswer, log.join("\n"));
    const renewal = JSON.parse(readFileSync(join(home, "certs", "_.example.com", "renewal.json"), "utf8"));
    assert.equal(renewal.challenge.type, "dns-persist-01");
    assert.deepEqual(renewal.challenge.persist, NAMES);

    const out: string[] = [];
    const sink = { write: (s: string) => out.push(s) };
    const io = { stdout: sink, stderr: sink, stderrIsTTY: false, stdoutIsTTY: false };
    assert.equal(await runMain(["list", "--json", "--home", home], { NO_COLOR: "1" }, io), 0, out.join(""));
    const doc = JSON.parse(out.join(""));
    const row = doc.certificates[0];
    assert.equal(row.persistent, true);
    assert.deepEqual(row.proofs, { "example.com": "dns-persist-01", "*.example.com": "dns-persist-01" });
    out.length = 0;
    assert.equal(await runMain(["list", "--home", home], { NO_COLOR: "1" }, io), 0);
    const text = out.join("");
    assert.match(text, /PROOF/);
    assert.match(
      text,
      /renew through persistent DNS records \(dns-persist-01\): _validation-persist\.example\.com/,
    );
  });
});
