/**
 * Account operations against a scripted HTTPS double: the key change JWS structure (RFC 8555
 * 7.3.5) verified with jose, contact update, deactivation and POST-as-GET of the account.
 */
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import { type FlattenedJWS, flattenedVerify } from "jose";
import {
  deactivateAccount,
  fetchAccount,
  keyChangeInnerJws,
  rolloverAccountKey,
  updateAccountContact,
} from "../../../src/acme/account-ops";
import { AccountSession } from "../../../src/acme/account-session";
import { AcmeClient } from "../../../src/acme/client";
import { type AccountKey, toAccountKey } from "../../../src/acme/jws";
import { WileError } from "../../../src/util/errors";
import { type HttpsDouble, startHttpsDouble } from "../../helpers/https-double";

let base = "";
let ca = "";
let nonce = 0;
let withKeyChange = true;
const posts: Array<{ url: string; body: string }> = [];
let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => send(res, 200, undefined);

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    "replay-nonce": `n${++nonce}`,
    ...(body === undefined
      ? {}
      : { "content-type": status >= 400 ? "application/problem+json" : "application/json" }),
    ...headers,
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
        newAccount: `${base}/new-acct`,
        newOrder: `${base}/order`,
        ...(withKeyChange ? { keyChange: `${base}/key-change` } : {}),
      });
    }
    if (req.url === "/nonce") return send(res, 200, undefined);
    posts.push({ url: req.url ?? "", body });
    answer(req, res);
  };
});

after(() => double.close());

beforeEach(() => {
  posts.length = 0;
  withKeyChange = true;
  answer = (_req, res) => send(res, 200, undefined);
});

function header(jws: FlattenedJWS): Record<string, unknown> {
  return JSON.parse(Buffer.from(jws.protected ?? "", "base64url").toString());
}

function payloadOf(jws: FlattenedJWS): unknown {
  const text = Buffer.from(jws.payload, "base64url").toString();
  return text === "" ? "" : JSON.parse(text);
}

async function keyPair(type: "P-256" | "P-384" | "rsa"): Promise<{ key: AccountKey; pub: KeyObject }> {
  const pair =
    type === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: type });
  return { key: await toAccountKey(pair.privateKey), pub: createPublicKey(pair.privateKey) };
}

/** Account 42 signing with `key`, on a fresh client for the double. */
function account(key: AccountKey): AccountSession {
  const c = new AcmeClient({
    directoryUrl: `${base}/dir`,
    userAgent: "wile/test",
    extraCa: ca,
    sleep: async () => {},
  });
  return new AccountSession(c, key, `${base}/acct/42`);
}

describe("key rollover (RFC 8555 7.3.5)", () => {
  test("outer JWS: old key, kid = account URL, nonce, url = keyChange; inner: new key, jwk, same url, no nonce/kid", async () => {
    const old = await keyPair("P-256");
    const fresh = await keyPair("P-384");
    const c = account(old.key);
    const next = await rolloverAccountKey(c, fresh.key);
    assert.equal(next.url, c.url);
    assert.equal(next.key, fresh.key);
    assert.equal(c.key, old.key, "the old session keeps its key");

    assert.equal(posts.length, 1);
    assert.equal(posts[0]?.url, "/key-change");
    const outer = JSON.parse(posts[0]?.body ?? "") as FlattenedJWS;
    const oh = header(outer);
    assert.equal(oh.alg, "ES256");
    assert.equal(oh.kid, `${base}/acct/42`);
    assert.equal(oh.jwk, undefined, "outer must not carry a jwk");
    assert.equal(oh.url, `${base}/key-change`);
    assert.equal(typeof oh.nonce, "string");
    await flattenedVerify(outer, old.pub);
    await assert.rejects(flattenedVerify(outer, fresh.pub), "outer must not verify with the new key");

    const inner = payloadOf(outer) as FlattenedJWS;
    const ih = header(inner);
    assert.deepEqual(Object.keys(ih).sort(), ["alg", "jwk", "url"], "inner header has only alg, jwk, url");
    assert.equal(ih.alg, "ES384");
    assert.deepEqual(ih.jwk, fresh.key.publicJwk);
    assert.equal((ih.jwk as Record<string, unknown>).d, undefined, "no private member in the jwk");
    assert.equal(ih.url, oh.url, "inner url = outer url");
    const verified = await flattenedVerify(inner, fresh.pub);
    assert.deepEqual(JSON.parse(Buffer.from(verified.payload).toString()), {
      account: `${base}/acct/42`,
      oldKey: old.key.publicJwk,
    });
    await assert.rejects(flattenedVerify(inner, old.pub), "inner must not verify with the old key");

    // The returned session signs as the same account with the new key.
    answer = (_req, res) => send(res, 200, { status: "valid", contact: [] });
    await fetchAccount(next);
    const after = JSON.parse(posts[1]?.body ?? "") as FlattenedJWS;
    assert.equal(header(after).kid, `${base}/acct/42`);
    await flattenedVerify(after, fresh.pub);
    c.client.close();
  });

  test("keyChangeInnerJws with an RSA key uses RS256", async () => {
    const old = await keyPair("P-256");
    const fresh = await keyPair("rsa");
    const inner = await keyChangeInnerJws(fresh.key, old.key.publicJwk, "https://ca/acct/1", "https://ca/kc");
    assert.equal(header(inner).alg, "RS256");
    await flattenedVerify(inner, fresh.pub);
  });

  test("409 (new key taken) is a clear error and the session keeps the old key", async () => {
    const old = await keyPair("P-256");
    const fresh = await keyPair("P-256");
    const c = account(old.key);
    answer = (_req, res) => send(res, 409, undefined, { location: `${base}/acct/other` });
    await assert.rejects(
      rolloverAccountKey(c, fresh.key),
      (e: unknown) => e instanceof WileError && /already belongs to another account/.test(e.message),
    );
    answer = (_req, res) => send(res, 200, { status: "valid", contact: [] });
    await fetchAccount(c);
    await flattenedVerify(JSON.parse(posts[1]?.body ?? "") as FlattenedJWS, old.pub);
    c.client.close();
  });

  test("no keyChange in the directory: refused before anything is signed", async () => {
    withKeyChange = false;
    const old = await keyPair("P-256");
    const c = account(old.key);
    await assert.rejects(rolloverAccountKey(c, (await keyPair("P-256")).key), /offers no keyChange/);
    assert.equal(posts.length, 0);
    c.client.close();
  });
});

describe("account object requests", () => {
  test("show is POST-as-GET (empty payload) to the account URL", async () => {
    const { key } = await keyPair("P-256");
    const c = account(key);
    answer = (_req, res) =>
      send(res, 200, { status: "valid", contact: ["mailto:a@example.com"], orders: "x" });
    const acct = await fetchAccount(c);
    assert.equal(acct.status, "valid");
    assert.deepEqual(acct.contact, ["mailto:a@example.com"]);
    assert.equal(posts[0]?.url, "/acct/42");
    assert.equal(JSON.parse(posts[0]?.body ?? "").payload, "");
    c.client.close();
  });

  test("update sends {contact}; deactivate sends {status: deactivated}", async () => {
    const { key } = await keyPair("P-256");
    const c = account(key);
    answer = (_req, res) => send(res, 200, { status: "valid", contact: ["mailto:new@example.com"] });
    const updated = await updateAccountContact(c, ["mailto:new@example.com"]);
    assert.deepEqual(updated.contact, ["mailto:new@example.com"]);
    assert.deepEqual(payloadOf(JSON.parse(posts[0]?.body ?? "")), { contact: ["mailto:new@example.com"] });

    answer = (_req, res) => send(res, 200, { status: "deactivated", contact: [] });
    const gone = await deactivateAccount(c);
    assert.equal(gone.status, "deactivated");
    assert.equal(posts[1]?.url, "/acct/42");
    assert.deepEqual(payloadOf(JSON.parse(posts[1]?.body ?? "")), { status: "deactivated" });
    c.client.close();
  });

  test("a malformed account object is an error naming the URL", async () => {
    const { key } = await keyPair("P-256");
    const c = account(key);
    answer = (_req, res) => send(res, 200, { contact: "nope" });
    await assert.rejects(
      fetchAccount(c),
      /malformed account object from https:\/\/127\.0\.0\.1:\d+\/acct\/42/,
    );
    c.client.close();
  });
});
