import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { describe, test } from "node:test";
import { calculateJwkThumbprint, flattenedVerify } from "jose";
import {
  dns01TxtValue,
  externalAccountBinding,
  jwkThumbprint,
  jwsAlgorithm,
  keyAuthorization,
  signRequest,
  toAccountKey,
} from "../../../src/acme/jws";

// RFC 7638 section 3.1: the example RSA key and its SHA-256 thumbprint.
const RFC7638_JWK = {
  kty: "RSA",
  n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
  e: "AQAB",
  alg: "RS256",
  kid: "2011-04-29",
};

// jose is a devDependency only: the independent implementation the tests check wile's JWS against.
describe("RFC 7638 JWK thumbprint", () => {
  test("3.1 example thumbprint", async () => {
    const expected = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    assert.equal(await calculateJwkThumbprint(RFC7638_JWK, "sha256"), expected, "jose agrees");
    assert.equal(jwkThumbprint(RFC7638_JWK as never), expected);
  });

  test("toAccountKey computes the same thumbprint for the same public key (jose agrees)", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const key = await toAccountKey(privateKey);
    const pub = createPublicKey(privateKey).export({ format: "jwk" });
    assert.equal(key.thumbprint, await calculateJwkThumbprint(pub as never, "sha256"));
    const rsa = await toAccountKey(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
    assert.equal(rsa.thumbprint, await calculateJwkThumbprint(rsa.publicJwk, "sha256"));
    assert.deepEqual(Object.keys(rsa.publicJwk).sort(), ["e", "kty", "n"]);
    assert.equal((key.publicJwk as Record<string, unknown>).d, undefined, "no private member");
    assert.deepEqual(Object.keys(key.publicJwk).sort(), ["crv", "kty", "x", "y"]);
  });
});

describe("RFC 8555 8.1 key authorization", () => {
  test("token.thumbprint", () => {
    assert.equal(
      keyAuthorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", {
        thumbprint: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
      }),
      "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
    );
  });
  test("8.4 dns-01 TXT value is base64url(SHA-256(key authorization))", () => {
    // SHA-256("abc") = ba7816bf...
    assert.equal(dns01TxtValue("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
  });
});

describe("RFC 8555 6.2 request signing", () => {
  test("algorithm per key type; Ed25519 and small RSA refused", () => {
    assert.equal(jwsAlgorithm(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey), "ES256");
    assert.equal(jwsAlgorithm(generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey), "ES384");
    assert.equal(jwsAlgorithm(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey), "RS256");
    assert.throws(() => jwsAlgorithm(generateKeyPairSync("ed25519").privateKey), /unsupported/);
    assert.throws(() => jwsAlgorithm(generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey), /2048/);
  });

  for (const [label, privateKey] of [
    ["ES256", generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey],
    ["ES384", generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey],
    ["RS256", generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey],
  ] as const) {
    test(`${label}: jwk header for newAccount, kid header otherwise, verifiable`, async () => {
      const key = await toAccountKey(privateKey);
      const withJwk = await signRequest(
        key,
        { url: "https://ca/new-acct", nonce: "abc" },
        { termsOfServiceAgreed: true },
      );
      const header = JSON.parse(Buffer.from(withJwk.protected ?? "", "base64url").toString());
      assert.deepEqual(Object.keys(header).sort(), ["alg", "jwk", "nonce", "url"]);
      assert.equal(header.alg, label);
      const verified = await flattenedVerify(withJwk, createPublicKey(key.privateKey));
      assert.deepEqual(JSON.parse(Buffer.from(verified.payload).toString()), { termsOfServiceAgreed: true });
      // And node:crypto over the exact signing input: r || s of 32 (ES256) or 48 (ES384) bytes each.
      const input = Buffer.from(`${withJwk.protected}.${withJwk.payload}`);
      const sig = Buffer.from(withJwk.signature, "base64url");
      if (label !== "RS256") assert.equal(sig.length, label === "ES256" ? 64 : 96);
      const hash = label === "ES384" ? "sha384" : "sha256";
      const pub = createPublicKey({ key: header.jwk, format: "jwk" });
      assert.ok(
        verify(hash, input, { key: pub, dsaEncoding: "ieee-p1363" }, sig),
        "the jwk header verifies it",
      );
      assert.ok(
        !verify(hash, Buffer.concat([input, Buffer.from("x")]), { key: pub, dsaEncoding: "ieee-p1363" }, sig),
      );

      const withKid = await signRequest(
        key,
        { url: "https://ca/order/1", nonce: "n2", kid: "https://ca/acct/1" },
        "",
      );
      const h2 = JSON.parse(Buffer.from(withKid.protected ?? "", "base64url").toString());
      assert.equal(h2.kid, "https://ca/acct/1");
      assert.equal(h2.jwk, undefined, "kid and jwk are mutually exclusive");
      assert.equal(withKid.payload, "", "POST-as-GET has an empty payload");
      await flattenedVerify(withKid, createPublicKey(key.privateKey));
    });
  }

  test("7.3.4 external account binding: HS256 over the account JWK, no nonce", async () => {
    const key = await toAccountKey(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
    const mac = Buffer.from("zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W", "base64url");
    const eab = await externalAccountBinding(key, { kid: "kid-1", hmacKey: mac }, "https://ca/new-acct");
    const header = JSON.parse(Buffer.from(eab.protected ?? "", "base64url").toString());
    assert.deepEqual(header, { alg: "HS256", kid: "kid-1", url: "https://ca/new-acct" });
    const verified = await flattenedVerify(eab, mac);
    assert.deepEqual(JSON.parse(Buffer.from(verified.payload).toString()), key.publicJwk);
    const other = Buffer.from(mac).fill(1);
    await assert.rejects(
      flattenedVerify(eab, other),
      /signature verification failed/,
      "keyed by the MAC key",
    );
  });
});
