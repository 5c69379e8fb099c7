import assert from "node:assert/strict";
import { createPublicKey, sign, verify } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  generateKey,
  isKeyType,
  KEY_TYPES,
  keyTypeOf,
  privateKeyFromPem,
  privateKeyToPem,
  publicKeyDer,
} from "../../../src/crypto/keys";
import { WileError } from "../../../src/util/errors";
import { opensslOk, tempDir } from "./openssl";

describe("key types", () => {
  test("KEY_TYPES lists the five supported types and isKeyType accepts only them", () => {
    assert.deepEqual([...KEY_TYPES], ["ec-256", "ec-384", "rsa-2048", "rsa-3072", "rsa-4096"]);
    for (const t of KEY_TYPES) assert.ok(isKeyType(t));
    for (const t of ["ec-521", "rsa-1024", "RSA-2048", "", "ed25519"]) assert.equal(isKeyType(t), false, t);
  });

  for (const type of KEY_TYPES) {
    test(`${type}: generates a private key whose type round-trips through PKCS#8 PEM`, async () => {
      const key = await generateKey(type);
      assert.equal(key.type, "private");
      assert.equal(keyTypeOf(key), type);
      assert.equal(keyTypeOf(createPublicKey(key)), type);
      if (type.startsWith("rsa")) assert.equal(key.asymmetricKeyDetails?.publicExponent, 65537n);

      const pem = privateKeyToPem(key);
      assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
      const back = privateKeyFromPem(pem, "/tmp/k.pem");
      assert.equal(keyTypeOf(back), type);
      assert.deepEqual(publicKeyDer(back), publicKeyDer(key));
      // The reloaded key signs what the original key's public part verifies.
      const sig = sign("sha256", Buffer.from("wile"), back);
      assert.ok(verify("sha256", Buffer.from("wile"), key, sig));
    });
  }

  test("publicKeyDer is the SPKI DER that openssl derives from the private key", async () => {
    const dir = tempDir();
    const key = await generateKey("ec-256");
    const file = join(dir, "k.pem");
    writeKey(file, privateKeyToPem(key));
    opensslOk(["pkey", "-in", file, "-pubout", "-outform", "DER", "-out", join(dir, "pub.der")]);
    assert.deepEqual(publicKeyDer(key), readFileSync(join(dir, "pub.der")));
    assert.deepEqual(publicKeyDer(createPublicKey(key)), readFileSync(join(dir, "pub.der")));
  });

  test("privateKeyToPem refuses a public key", async () => {
    const key = await generateKey("ec-256");
    assert.throws(() => privateKeyToPem(createPublicKey(key)), /private key/);
  });
});

describe("privateKeyFromPem accepts the usual formats", () => {
  const dir = tempDir();
  const make = (name: string, ...cmds: string[][]): string => {
    const file = join(dir, name);
    for (const args of cmds) opensslOk(args.map((a) => a.replace("$OUT", file)));
    return readFileSync(file, "utf8");
  };

  test("SEC1 EC PRIVATE KEY (P-256 and P-384)", () => {
    for (const [curve, type] of [
      ["P-256", "ec-256"],
      ["P-384", "ec-384"],
    ] as const) {
      const pk8 = join(dir, `pk8-${curve}.pem`);
      opensslOk(["genpkey", "-algorithm", "EC", "-pkeyopt", `ec_paramgen_curve:${curve}`, "-out", pk8]);
      const pem = make(`sec1-${curve}.pem`, ["ec", "-in", pk8, "-out", "$OUT"]);
      assert.match(pem, /BEGIN EC PRIVATE KEY/);
      assert.equal(keyTypeOf(privateKeyFromPem(pem, "sec1.pem")), type);
    }
  });

  test("PKCS#1 RSA PRIVATE KEY", () => {
    const pk8 = join(dir, "rsa-pk8.pem");
    opensslOk(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pk8]);
    const pem = make("pkcs1.pem", ["rsa", "-in", pk8, "-traditional", "-out", "$OUT"]);
    assert.match(pem, /BEGIN RSA PRIVATE KEY/);
    assert.equal(keyTypeOf(privateKeyFromPem(pem, "pkcs1.pem")), "rsa-2048");
  });

  test("a key followed by a certificate in one file (the key is picked)", async () => {
    const key = await generateKey("ec-256");
    const keyFile = join(dir, "combo-key.pem");
    writeKey(keyFile, privateKeyToPem(key));
    const cert = opensslOk(["req", "-x509", "-key", keyFile, "-subj", "/CN=combo", "-days", "1"]);
    const loaded = privateKeyFromPem(cert + privateKeyToPem(key), "combo.pem");
    assert.deepEqual(publicKeyDer(loaded), publicKeyDer(key));
  });
});

describe("privateKeyFromPem explains what is wrong (WileError naming the file)", () => {
  const dir = tempDir();
  const rejects = (pem: string, message: RegExp, hint: RegExp) => {
    assert.throws(
      () => privateKeyFromPem(pem, "/etc/wile/key.pem"),
      (err: unknown) => {
        assert.ok(err instanceof WileError, String(err));
        assert.match(err.message, /^\/etc\/wile\/key\.pem: /);
        assert.match(err.message, message);
        assert.match(err.hint ?? "", hint);
        return true;
      },
    );
  };

  test("a PKCS#8 key encrypted with a passphrase", () => {
    const file = join(dir, "enc.pem");
    opensslOk(
      ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256"].concat([
        "-pass",
        "pass:secret",
        "-out",
        file,
      ]),
    );
    const pem = readFileSync(file, "utf8");
    assert.match(pem, /ENCRYPTED PRIVATE KEY/);
    rejects(pem, /encrypted/, /openssl pkey -in \/etc\/wile\/key\.pem/);
  });

  test("a legacy encrypted PKCS#1 key (Proc-Type: 4,ENCRYPTED)", () => {
    const plain = join(dir, "rsa.pem");
    const file = join(dir, "legacy-enc.pem");
    opensslOk(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", plain]);
    opensslOk(["rsa", "-in", plain, "-traditional", "-aes128", "-passout", "pass:secret", "-out", file]);
    const pem = readFileSync(file, "utf8");
    assert.match(pem, /Proc-Type: 4,ENCRYPTED/);
    rejects(pem, /encrypted/, /unencrypted/);
  });

  test("a certificate instead of a key", () => {
    const keyFile = join(dir, "k.pem");
    opensslOk(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyFile]);
    const cert = opensslOk(["req", "-x509", "-key", keyFile, "-subj", "/CN=x", "-days", "1"]);
    rejects(cert, /not a private key: it holds "CERTIFICATE"/, /private key file/);
  });

  test("a public key instead of a private key", async () => {
    const pub = createPublicKey(await generateKey("ec-256")).export({ type: "spki", format: "pem" });
    rejects(String(pub), /not a private key: it holds "PUBLIC KEY"/, /private key file/);
  });

  test("garbage and broken PEM", () => {
    rejects("hello world\n", /no PEM private key found/, /PKCS#8/);
    rejects("", /no PEM private key found/, /PKCS#8/);
    rejects("-----BEGIN PRIVATE KEY-----\nAAAA\n", /not a readable PEM file/, /intact/);
    rejects(
      "-----BEGIN PRIVATE KEY-----\n!!notbase64!!\n-----END PRIVATE KEY-----\n",
      /readable PEM/,
      /intact/,
    );
    rejects("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", /could not be read/, /intact/);
  });

  test("an Ed25519 key (Let's Encrypt does not issue for it)", () => {
    const file = join(dir, "ed.pem");
    opensslOk(["genpkey", "-algorithm", "ed25519", "-out", file]);
    rejects(readFileSync(file, "utf8"), /unsupported key: ed25519 key/, /ec-256, ec-384, rsa-2048/);
  });

  test("an EC key on an unsupported curve (P-521)", () => {
    const file = join(dir, "p521.pem");
    opensslOk(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-out", file]);
    rejects(readFileSync(file, "utf8"), /unsupported key: EC key on curve secp521r1/, /Supported key types/);
  });

  test("an RSA key of an unsupported size (1024 bits)", () => {
    const file = join(dir, "rsa1024.pem");
    opensslOk(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", file]);
    rejects(readFileSync(file, "utf8"), /unsupported key: RSA key of 1024 bits/, /rsa-2048/);
  });
});

function writeKey(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
}
