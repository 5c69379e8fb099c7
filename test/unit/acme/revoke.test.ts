/**
 * Revocation: the payload and reasons (RFC 8555 7.6), who signs it (account kid or certificate
 * jwk), checked on a scripted HTTPS double; the CLI's reason parsing and the confirmation rule.
 */
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import type { ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { flattenedVerify } from "jose";
import { AccountSession } from "../../../src/acme/account-session";
import { AcmeClient } from "../../../src/acme/client";
import { toAccountKey } from "../../../src/acme/jws";
import {
  REVOCATION_REASON_NAMES,
  REVOCATION_REASONS,
  revocationPayload,
  revokeCertificate,
} from "../../../src/acme/revoke";
import { parseReason } from "../../../src/cli/commands/revoke";
import { confirmAction } from "../../../src/cli/confirm";
import { createOutput } from "../../../src/cli/output";
import { runMain } from "../../../src/main";
import { UsageError, WileError } from "../../../src/util/errors";
import { type HttpsDouble, startHttpsDouble } from "../../helpers/https-double";

let base = "";
let ca = "";
let withRevoke = true;
let nonce = 0;
const posts: Array<{ url: string; body: string }> = [];
let answer: (res: ServerResponse) => void = (res) => send(res, 200, undefined);

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, {
    "replay-nonce": `n${++nonce}`,
    ...(body === undefined
      ? {}
      : { "content-type": status >= 400 ? "application/problem+json" : "application/json" }),
  });
  res.end(body === undefined ? "" : JSON.stringify(body));
}

let double: HttpsDouble;
before(async () => {
  double = await startHttpsDouble();
  base = double.base;
  ca = double.ca;
  double.route = (req, body, res) => {
    if (req.url === "/dir") {
      return send(res, 200, {
        newNonce: `${base}/nonce`,
        newAccount: `${base}/acct`,
        newOrder: `${base}/order`,
        ...(withRevoke ? { revokeCert: `${base}/revoke` } : {}),
      });
    }
    if (req.url === "/nonce") return send(res, 200, undefined);
    posts.push({ url: req.url ?? "", body });
    answer(res);
  };
});

after(() => double.close());

beforeEach(() => {
  posts.length = 0;
  withRevoke = true;
  answer = (res) => send(res, 200, undefined);
});

const certDer = () => Buffer.from(ca.replace(/-----[^-]+-----|\s/g, ""), "base64");

function client() {
  return new AcmeClient({
    directoryUrl: `${base}/dir`,
    userAgent: "wile/test",
    extraCa: ca,
    sleep: async () => {},
  });
}

function decode(body: string) {
  const jws = JSON.parse(body) as { protected: string; payload: string; signature: string };
  return {
    jws,
    header: JSON.parse(Buffer.from(jws.protected, "base64url").toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(jws.payload, "base64url").toString()) as Record<string, unknown>,
  };
}

describe("revocation payload and reasons", () => {
  test("reasons map to the RFC 5280 codes Let's Encrypt accepts", () => {
    assert.deepEqual(REVOCATION_REASONS, {
      unspecified: 0,
      keyCompromise: 1,
      superseded: 4,
      cessationOfOperation: 5,
    });
    assert.deepEqual(REVOCATION_REASON_NAMES, [
      "unspecified",
      "keyCompromise",
      "superseded",
      "cessationOfOperation",
    ]);
  });

  test("payload is {certificate: base64url(DER) without padding, reason: code}", () => {
    const der = certDer();
    for (const name of REVOCATION_REASON_NAMES) {
      const p = revocationPayload(der, name);
      assert.equal(p.reason, REVOCATION_REASONS[name]);
      assert.equal(p.certificate, der.toString("base64url"));
      assert.doesNotMatch(p.certificate, /[=+/]/);
      assert.deepEqual(Buffer.from(p.certificate, "base64url"), der);
    }
  });

  test("--reason accepts the names in any case and with dashes; anything else is a usage error", () => {
    assert.equal(parseReason(undefined), "unspecified");
    assert.equal(parseReason("keyCompromise"), "keyCompromise");
    assert.equal(parseReason("key-compromise"), "keyCompromise");
    assert.equal(parseReason("CESSATIONOFOPERATION"), "cessationOfOperation");
    assert.equal(parseReason("superseded"), "superseded");
    for (const bad of ["affiliationChanged", "3", "", "compromise", "certificateHold"]) {
      assert.throws(
        () => parseReason(bad),
        (e: unknown) =>
          e instanceof UsageError && e.exitCode === 2 && /unspecified, keyCompromise/.test(e.hint ?? ""),
        bad,
      );
    }
  });

  test("wile revoke with a bad --reason exits 2 before touching anything", async () => {
    const out: string[] = [];
    const sink = { write: (s: string) => out.push(s) };
    const code = await runMain(
      [
        "revoke",
        "example.com",
        "--reason",
        "affiliationChanged",
        "--home",
        join(tmpdir(), "wile-revoke-nohome-does-not-exist"),
      ],
      { NO_COLOR: "1" },
      { stdout: sink, stderr: sink, stderrIsTTY: false, stdoutIsTTY: false },
    );
    assert.equal(code, 2, out.join(""));
    assert.match(out.join(""), /unknown --reason "affiliationChanged"/);
  });
});

describe("revokeCertificate against a scripted CA", () => {
  test("signed by the account: kid = account URL, no jwk, payload with the reason code", async () => {
    const c = client();
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const account = new AccountSession(c, await toAccountKey(pair.privateKey), `${base}/acct/7`);
    await revokeCertificate(c, certDer(), "keyCompromise", account.signer);
    c.close();
    assert.equal(posts.length, 1);
    assert.equal(posts[0]?.url, "/revoke");
    const { jws, header, payload } = decode(posts[0]?.body ?? "");
    assert.equal(header.kid, `${base}/acct/7`);
    assert.equal(header.jwk, undefined);
    assert.equal(header.url, `${base}/revoke`);
    assert.equal(typeof header.nonce, "string");
    assert.deepEqual(payload, { certificate: certDer().toString("base64url"), reason: 1 });
    await flattenedVerify(jws, pair.publicKey);
  });

  test("signed by the certificate key: jwk header (no kid), verifies with that key", async () => {
    const c = client();
    const certKey = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const key = await toAccountKey(certKey.privateKey);
    await revokeCertificate(c, certDer(), "cessationOfOperation", { key });
    c.close();
    const { jws, header, payload } = decode(posts[0]?.body ?? "");
    assert.equal(header.kid, undefined);
    assert.deepEqual(header.jwk, key.publicJwk);
    assert.equal(header.alg, "ES384");
    assert.equal(payload.reason, 5);
    await flattenedVerify(jws, createPublicKey(certKey.privateKey));
  });

  test("the CA's problem (alreadyRevoked) comes back typed; no revokeCert in the directory is a clear error", async () => {
    answer = (res) =>
      send(res, 400, {
        type: "urn:ietf:params:acme:error:alreadyRevoked",
        detail: "Certificate has already been revoked.",
      });
    const c = client();
    const key = await toAccountKey(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
    await assert.rejects(revokeCertificate(c, certDer(), "superseded", { key }), (e: unknown) => {
      return e instanceof WileError && (e as { is?: (n: string) => boolean }).is?.("alreadyRevoked") === true;
    });
    c.close();
    withRevoke = false;
    const c2 = client();
    await assert.rejects(revokeCertificate(c2, certDer(), "superseded", { key }), /offers no revokeCert/);
    c2.close();
  });
});

describe("confirmation of destructive commands", () => {
  const sinkOut = () => {
    const lines: string[] = [];
    const sink = { write: (s: string) => lines.push(s) };
    return {
      lines,
      out: createOutput(
        { stdout: sink, stderr: sink, stderrIsTTY: false, stdoutIsTTY: false },
        {},
        { json: false, verbose: false },
      ),
    };
  };
  const tty = (answerLine: string | null) => ({ isTTY: true, readLine: async () => answerLine });
  const pipe = { isTTY: false, readLine: async () => "yes" };

  test("without a terminal and without --yes: exit 2, plan shown, says to add --yes", async () => {
    const { out, lines } = sinkOut();
    await assert.rejects(
      confirmAction({ yes: false, action: "revoke x", plan: ["This revokes x."], out, input: pipe }),
      (e: unknown) => e instanceof UsageError && e.exitCode === 2 && /--yes/.test(e.hint ?? ""),
    );
    assert.match(lines.join(""), /This revokes x\./);
  });

  test('--yes goes ahead without reading; on a terminal only "yes" does', async () => {
    const { out } = sinkOut();
    await confirmAction({
      yes: true,
      action: "a",
      plan: [],
      out,
      input: { isTTY: false, readLine: async () => assert.fail("read") },
    });
    await confirmAction({ yes: false, action: "a", plan: [], out, input: tty(" YES ") });
    for (const no of ["no", "", "y", null]) {
      await assert.rejects(
        confirmAction({ yes: false, action: "a", plan: [], out, input: tty(no) }),
        (e: unknown) => e instanceof WileError && e.exitCode === 1 && /not confirmed/.test(e.message),
      );
    }
  });
});
