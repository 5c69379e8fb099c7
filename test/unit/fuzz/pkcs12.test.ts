/**
 * Fuzz of the PKCS#12 writer (src/crypto/pkcs12.ts): for any password and friendly name (any
 * Unicode, empty, NUL, astral characters), modern or legacy, the file read back in-process has a MAC
 * that verifies and decrypts to the key and certificates given, and the friendly name; a password
 * with a lone UTF-16 surrogate (no UTF-8 form) is refused. A sample of 50
 * (passwords without NUL, which an argv cannot carry; iteration count 2048 as in use) opens with `openssl pkcs12 -info`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createDecipheriv, createHmac, generateKeyPairSync, pbkdf2Sync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import fc from "fast-check";
import * as der from "../../../src/crypto/der";
import { fromPem, toPem } from "../../../src/crypto/pem";
import { bmpPassword, buildPfx, pkcs12Kdf } from "../../../src/crypto/pkcs12";
import { tempDir } from "../crypto/openssl";
import { fuzz } from "./fuzz";

const dir = tempDir();
// RSA as PKCS#1 PEM: of the key forms wile takes, the one OpenSSL reads fastest (buildPfx reads it each time).
const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const keyPem = key.export({ type: "pkcs1", format: "pem" }).toString();
const pkcs8 = key.export({ type: "pkcs8", format: "der" });
const chainPem = readFileSync(join(import.meta.dirname, "fixtures", "chain.pem"), "utf8");
const [, caDer] = fromPem(chainPem) as [Buffer, Buffer];
let certPem = "";
let leafDer: Buffer = Buffer.alloc(0);

before(() => {
  writeFileSync(join(dir, "key.pem"), keyPem);
  const r = spawnSync(
    "openssl",
    ["req", "-x509", "-new", "-key", join(dir, "key.pem"), "-subj", "/CN=pfx.example.org", "-days", "2"],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  certPem = r.stdout;
  leafDer = fromPem(certPem, "CERTIFICATE")[0] as Buffer;
});

/** Any Unicode text, and strings of UTF-16 code units (lone surrogates too: JSON can hold them). */
const anyText = fc.oneof(
  fc.string({ maxLength: 24, unit: "binary" }),
  fc.string({ maxLength: 12, unit: "grapheme" }),
  fc.string({ maxLength: 12, unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
  fc.constantFrom("", "\u0000", "p\u00e4ssw\u00f6rd \u20ac", "\ud83d\udd11"),
);
const pfxCase = fc.record({
  password: anyText,
  friendlyName: fc.option(anyText),
  legacy: fc.boolean(),
  withChain: fc.oneof(
    { weight: 3, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
  iterations: fc.integer({ min: 1, max: 3 }),
});
type PfxCase = typeof pfxCase extends fc.Arbitrary<infer T> ? T : never;

const nodes = (n: der.DerNode) => der.children(n);
/** The SEQUENCE inside an explicit [0]. */
const explicit0 = (n: der.DerNode) => {
  assert.equal(n.tagByte, 0xa0);
  return nodes(n)[0] as der.DerNode;
};

/** Decrypts with the algorithm named in `alg` (PBES2 AES-256-CBC or pbeWithSHAAnd3-KeyTripleDES-CBC). */
function decrypt(alg: der.DerNode, ciphertext: Buffer, password: string): Buffer {
  const [oid, params] = nodes(alg) as [der.DerNode, der.DerNode];
  if (der.decodeOid(oid.content) === "1.2.840.113549.1.5.13") {
    const [kdf, enc] = nodes(params) as [der.DerNode, der.DerNode];
    const [salt, iter] = nodes(nodes(kdf)[1] as der.DerNode) as [der.DerNode, der.DerNode];
    const iv = (nodes(enc)[1] as der.DerNode).content;
    const k = pbkdf2Sync(
      Buffer.from(password, "utf8"),
      salt.content,
      Number(der.decodeInteger(iter.content)),
      32,
      "sha256",
    );
    const d = createDecipheriv("aes-256-cbc", k, iv);
    return Buffer.concat([d.update(ciphertext), d.final()]);
  }
  assert.equal(der.decodeOid(oid.content), "1.2.840.113549.1.12.1.3");
  const [salt, iter] = nodes(params) as [der.DerNode, der.DerNode];
  const n = Number(der.decodeInteger(iter.content));
  const bmp = bmpPassword(password);
  const k = pkcs12Kdf("sha1", bmp, salt.content, 1, n, 24);
  const iv = pkcs12Kdf("sha1", bmp, salt.content, 2, n, 8);
  const d = createDecipheriv("des-ede3-cbc", k, iv);
  return Buffer.concat([d.update(ciphertext), d.final()]);
}

/** Reads a PFX with the DER reader: MAC, key, certificates and friendly names. */
function readPfx(pfx: Buffer, password: string) {
  const [version, authSafeInfo, macData] = nodes(der.readDer(pfx)) as [der.DerNode, der.DerNode, der.DerNode];
  assert.equal(der.decodeInteger(version.content), 3n);
  const authSafeOctets = explicit0(nodes(authSafeInfo)[1] as der.DerNode).content;
  const [digestInfo, macSalt, macIter] = nodes(macData) as [der.DerNode, der.DerNode, der.DerNode];
  const [digestAlg, mac] = nodes(digestInfo) as [der.DerNode, der.DerNode];
  const hash =
    der.decodeOid((nodes(digestAlg)[0] as der.DerNode).content) === "1.3.14.3.2.26" ? "sha1" : "sha256";
  const macKey = pkcs12Kdf(
    hash,
    bmpPassword(password),
    macSalt.content,
    3,
    Number(der.decodeInteger(macIter.content)),
    hash === "sha1" ? 20 : 32,
  );
  assert.ok(
    createHmac(hash, macKey).update(authSafeOctets).digest().equals(mac.content),
    "MAC does not verify",
  );

  const [certInfo, keyInfo] = nodes(der.readDer(authSafeOctets)) as [der.DerNode, der.DerNode];
  // Certificates: EncryptedData { version, EncryptedContentInfo { data, alg, [0] IMPLICIT ciphertext } }
  const eci = nodes(explicit0(nodes(certInfo)[1] as der.DerNode))[1] as der.DerNode;
  const [, certAlg, certCipher] = nodes(eci) as [der.DerNode, der.DerNode, der.DerNode];
  const certBags = nodes(der.readDer(decrypt(certAlg, certCipher.content, password)));
  const certs = certBags.map(
    (bag) => explicit0(nodes(explicit0(nodes(bag)[1] as der.DerNode))[1] as der.DerNode).content,
  );
  const names = (bag: der.DerNode) =>
    (nodes(bag)[2] ? nodes(nodes(bag)[2] as der.DerNode) : [])
      .filter((a) => der.decodeOid((nodes(a)[0] as der.DerNode).content) === "1.2.840.113549.1.9.20")
      .map((a) => der.decodeString(nodes(nodes(a)[1] as der.DerNode)[0] as der.DerNode));
  // Key: data { SafeContents { pkcs8ShroudedKeyBag { EncryptedPrivateKeyInfo { alg, octets } } } }
  const keyBag = nodes(der.readDer(explicit0(nodes(keyInfo)[1] as der.DerNode).content))[0] as der.DerNode;
  const [keyAlg, keyCipher] = nodes(explicit0(nodes(keyBag)[1] as der.DerNode)) as [der.DerNode, der.DerNode];
  return {
    key: decrypt(keyAlg, keyCipher.content, password),
    certs,
    names: [...names(keyBag), ...certBags.flatMap(names)],
  };
}

function build(c: PfxCase): Buffer {
  return buildPfx({
    keyPem,
    certPem,
    chainPems: c.withChain ? [toPem("CERTIFICATE", caDer)] : [],
    password: c.password,
    ...(c.friendlyName === null ? {} : { friendlyName: c.friendlyName }),
    legacy: c.legacy,
    iterations: c.iterations,
  });
}

test("fuzz: buildPfx, any password and friendly name: MAC verifies, key and certificates decrypt back", async (t) => {
  await fuzz(
    t,
    "pkcs12",
    0x9f12,
    fc.property(pfxCase, (c) => {
      if (/\p{Cs}/u.test(c.password)) {
        assert.throws(() => build(c), { message: /lone UTF-16 surrogate/ });
        return;
      }
      const back = readPfx(build(c), c.password);
      assert.ok(back.key.equals(pkcs8), "not the key given");
      assert.deepEqual(back.certs, c.withChain ? [leafDer, caDer] : [leafDer]);
      assert.deepEqual(back.names, c.friendlyName === null ? [] : [c.friendlyName, c.friendlyName]);
    }),
  );
});

test("fuzz: a sample of PKCS#12 files opens with openssl pkcs12 -info, key and certificates intact", async (t) => {
  const file = join(dir, "sample.pfx");
  const blocks = (text: string, label: string) =>
    text.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, "g")) ?? [];
  await fuzz(
    t,
    "pkcs12-openssl",
    0x9f13,
    fc.property(
      pfxCase.map((c) => ({ ...c, iterations: 2048 })),
      fc.string({ maxLength: 16, unit: "binary" }).filter((p) => !p.includes("\u0000")),
      (c, password) => {
        writeFileSync(file, build({ ...c, password }));
        const r = spawnSync(
          "openssl",
          ["pkcs12", "-info", "-noenc", "-in", file, "-passin", `pass:${password}`],
          {
            encoding: "utf8",
          },
        );
        assert.equal(
          r.status,
          0,
          `openssl pkcs12 -info with password ${JSON.stringify(password)}: ${r.stderr}`,
        );
        assert.deepEqual(blocks(r.stdout, "PRIVATE KEY"), [toPem("PRIVATE KEY", pkcs8).trim()]);
        const certs = blocks(r.stdout, "CERTIFICATE").map((b) => fromPem(b)[0]);
        assert.deepEqual(certs, c.withChain ? [leafDer, caDer] : [leafDer]);
      },
    ),
    50,
  );
});
