import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import type { Identifier } from "../../../src/acme/types";
import { createCsr } from "../../../src/crypto/csr";
import { generateKey, type KeyType } from "../../../src/crypto/keys";
import { openssl, tempDir } from "./openssl";

const dns = (value: string): Identifier => ({ type: "dns", value });
const ip = (value: string): Identifier => ({ type: "ip", value });
/** 70 characters: longer than a CN may be (ub-common-name 64). */
const SEVENTY = `${"a".repeat(62)}.example`;

interface Shape {
  name: string;
  keyType: KeyType;
  identifiers: Identifier[];
  mustStaple?: boolean;
  subject: string;
  san: string;
  sigAlg: string;
}

const shapes: Shape[] = [
  {
    name: "ec-256, one DNS name",
    keyType: "ec-256",
    identifiers: [dns("example.com")],
    subject: "CN = example.com",
    san: "DNS:example.com",
    sigAlg: "ecdsa-with-SHA256",
  },
  {
    name: "ec-384, several DNS names in order",
    keyType: "ec-384",
    identifiers: [dns("www.example.org"), dns("example.org"), dns("*.mail.example.org")],
    subject: "CN = www.example.org",
    san: "DNS:www.example.org, DNS:example.org, DNS:*.mail.example.org",
    sigAlg: "ecdsa-with-SHA384",
  },
  {
    name: "rsa-2048, one DNS name",
    keyType: "rsa-2048",
    identifiers: [dns("rsa.example.net")],
    subject: "CN = rsa.example.net",
    san: "DNS:rsa.example.net",
    sigAlg: "sha256WithRSAEncryption",
  },
  {
    name: "ec-256, IPv4 and compressed IPv6 identifiers (RFC 8738) after a DNS name",
    keyType: "ec-256",
    identifiers: [dns("host.example"), ip("192.0.2.7"), ip("2001:db8::42:1")],
    subject: "CN = host.example",
    san: "DNS:host.example, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:42:1",
    sigAlg: "ecdsa-with-SHA256",
  },
  {
    name: "ec-256, IP identifiers only: empty subject",
    keyType: "ec-256",
    identifiers: [ip("::ffff:198.51.100.1"), ip("203.0.113.9")],
    subject: "",
    san: "IP Address:0:0:0:0:0:FFFF:C633:6401, IP Address:203.0.113.9",
    sigAlg: "ecdsa-with-SHA256",
  },
  {
    name: "ec-256, a 70-character first name: empty subject, name only in SAN",
    keyType: "ec-256",
    identifiers: [dns(SEVENTY), dns("short.example")],
    subject: "",
    san: `DNS:${SEVENTY}, DNS:short.example`,
    sigAlg: "ecdsa-with-SHA256",
  },
  {
    name: "ec-256 with Must-Staple",
    keyType: "ec-256",
    identifiers: [dns("staple.example")],
    mustStaple: true,
    subject: "CN = staple.example",
    san: "DNS:staple.example",
    sigAlg: "ecdsa-with-SHA256",
  },
  {
    name: "rsa-2048 with Must-Staple",
    keyType: "rsa-2048",
    identifiers: [dns("staple-rsa.example")],
    mustStaple: true,
    subject: "CN = staple-rsa.example",
    san: "DNS:staple-rsa.example",
    sigAlg: "sha256WithRSAEncryption",
  },
];

describe("createCsr is accepted by openssl (RFC 2986, RFC 8555 7.4)", () => {
  const dir = tempDir();
  const keys = new Map<KeyType, KeyObject>();
  before(async () => {
    for (const t of ["ec-256", "ec-384", "rsa-2048"] as const) keys.set(t, await generateKey(t));
  });

  for (const [i, shape] of shapes.entries()) {
    test(shape.name, () => {
      assert.equal(SEVENTY.length, 70);
      const key = keys.get(shape.keyType) as KeyObject;
      const der = createCsr({ key, identifiers: shape.identifiers, mustStaple: shape.mustStaple });
      const file = join(dir, `req-${i}.der`);
      writeFileSync(file, der);

      const verify = openssl(["req", "-inform", "DER", "-in", file, "-verify", "-noout"]);
      assert.equal(verify.status, 0, verify.stderr);
      assert.match(verify.stdout + verify.stderr, /verify OK/);

      const text = openssl(["req", "-inform", "DER", "-in", file, "-noout", "-text"]);
      assert.equal(text.status, 0, text.stderr);
      const out = text.stdout;
      assert.match(out, /Version: 1 \(0x0\)/);
      assert.equal(/Subject:(.*)/.exec(out)?.[1]?.trim(), shape.subject);
      assert.equal(/X509v3 Subject Alternative Name:.*\n\s*(.*)/.exec(out)?.[1]?.trim(), shape.san);
      assert.equal(/Signature Algorithm: (.*)/.exec(out)?.[1]?.trim(), shape.sigAlg);
      if (shape.subject === "") assert.match(out, /X509v3 Subject Alternative Name: critical/);
      if (shape.mustStaple) {
        assert.match(out, /TLS Feature:\s*\n\s*status_request/);
      } else {
        assert.doesNotMatch(out, /TLS Feature|status_request/);
      }
    });
  }

  test("RSA signature algorithm carries NULL parameters, ECDSA none (RFC 3279 2.2, RFC 5758 3.2)", () => {
    for (const [t, params] of [
      ["rsa-2048", true],
      ["ec-384", false],
    ] as const) {
      const file = join(dir, `alg-${t}.der`);
      writeFileSync(file, createCsr({ key: keys.get(t) as KeyObject, identifiers: [dns("a.example")] }));
      const parsed = openssl(["asn1parse", "-inform", "DER", "-in", file]).stdout.split("\n");
      // The outer signatureAlgorithm is the second-to-last SEQUENCE; look at the lines after its OID.
      const algLine = parsed.findLastIndex((l) =>
        /OBJECT\s+:(sha256WithRSAEncryption|ecdsa-with-SHA384)/.test(l),
      );
      assert.equal(
        /NULL/.test(parsed[algLine + 1] ?? ""),
        params,
        parsed.slice(algLine - 1, algLine + 3).join("\n"),
      );
    }
  });
});

describe("createCsr rejects what it cannot sign", () => {
  test("an empty identifier list", async () => {
    const key = await generateKey("ec-256");
    assert.throws(() => createCsr({ key, identifiers: [] }), /at least one identifier/);
  });

  test("an unsupported key type (Ed25519, P-521, RSA-1024)", () => {
    const unsupported = [
      generateKeyPairSync("ed25519").privateKey,
      generateKeyPairSync("ec", { namedCurve: "P-521" }).privateKey,
      generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey,
    ];
    for (const key of unsupported) {
      assert.throws(() => createCsr({ key, identifiers: [dns("a.example")] }), /unsupported key type/);
    }
  });

  test("a public key", async () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    assert.throws(() => createCsr({ key: publicKey, identifiers: [dns("a.example")] }), /private key/);
  });

  test("a malformed IP identifier", async () => {
    const key = await generateKey("ec-256");
    for (const bad of ["1.2.3", "256.1.1.1", "[::1]", "fe80::1%eth0", "1::2::3", "example.com"]) {
      assert.throws(() => createCsr({ key, identifiers: [ip(bad)] }), /not an IPv4 or IPv6 address/, bad);
    }
  });

  test("a non-ASCII DNS name (must be punycode first)", async () => {
    const key = await generateKey("ec-256");
    assert.throws(() => createCsr({ key, identifiers: [dns("bücher.example")] }), /not ASCII/);
  });
});
