import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { createSecureContext } from "node:tls";
import { bmpPassword, buildPfx, pkcs12Kdf, randomPassword } from "../../../src/crypto/pkcs12";
import { openssl, opensslOk, tempDir } from "./openssl";

/** The CERTIFICATE / PRIVATE KEY blocks of openssl output, as trimmed PEM strings, in order. */
function blocks(text: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, "g");
  return (text.match(re) ?? []).map((b) => b.trim());
}

const dir = tempDir();
const f = (name: string) => join(dir, name);

/** root (EC) -> intermediate (EC) -> two leaves (ec-256 and rsa-2048), all made by openssl. */
before(() => {
  const req = (key: string, keyOpts: string[], out: string, subj: string, extra: string[]) =>
    opensslOk([
      "req",
      "-newkey",
      ...keyOpts,
      "-nodes",
      "-keyout",
      f(key),
      "-out",
      f(out),
      "-subj",
      subj,
      ...extra,
    ]);
  const ec = ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
  req("root.key", ec, "root.pem", "/CN=Wile Test Root", ["-x509", "-days", "30"]);
  writeFileSync(f("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
  writeFileSync(f("leaf.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=DNS:mail.example.com\n");
  req("int.key", ec, "int.csr", "/CN=Wile Test Intermediate", []);
  const sign = (csr: string, caPem: string, caKey: string, ext: string, out: string) =>
    opensslOk(
      ["x509", "-req", "-in", f(csr), "-CA", f(caPem), "-CAkey", f(caKey), "-CAcreateserial"].concat([
        "-extfile",
        f(ext),
        "-days",
        "20",
        "-out",
        f(out),
      ]),
    );
  sign("int.csr", "root.pem", "root.key", "ca.ext", "int.pem");
  req("ec.key", ec, "ec.csr", "/CN=mail.example.com", []);
  req("rsa.key", ["rsa:2048"], "rsa.csr", "/CN=mail.example.com", []);
  sign("ec.csr", "int.pem", "int.key", "leaf.ext", "ec.pem");
  sign("rsa.csr", "int.pem", "int.key", "leaf.ext", "rsa.pem");
});

const read = (name: string) => readFileSync(f(name), "utf8");
/** openssl's PKCS#8 PEM of a key file, the form `openssl pkcs12 -nodes` prints. */
const pkcs8 = (keyFile: string) => opensslOk(["pkey", "-in", f(keyFile)]).trim();

interface Case {
  keyType: "ec" | "rsa";
  chain: string[];
  legacy: boolean;
}

const cases: Case[] = [];
for (const keyType of ["ec", "rsa"] as const) {
  for (const chain of [["int.pem"], ["int.pem", "root.pem"]]) {
    for (const legacy of [false, true]) cases.push({ keyType, chain, legacy });
  }
}

describe("buildPfx, read back by openssl pkcs12 and node:tls", () => {
  for (const c of cases) {
    const label = `${c.legacy ? "legacy" : "modern"}, ${c.keyType === "ec" ? "ec-256" : "rsa-2048"}, chain of ${c.chain.length}`;
    test(label, () => {
      const password = randomPassword();
      const friendlyName = `wile mail.example.com ${c.keyType} ${c.chain.length}`;
      const pfx = buildPfx({
        keyPem: read(`${c.keyType}.key`),
        certPem: read(`${c.keyType}.pem`),
        chainPems: c.chain.map(read),
        password,
        friendlyName,
        legacy: c.legacy,
      });
      const file = f(`${label.replace(/[^a-z0-9]+/gi, "-")}.pfx`);
      writeFileSync(file, pfx);

      // -info prints the algorithms on stderr and the bags on stdout.
      const info = openssl(["pkcs12", "-info", "-in", file, "-passin", `pass:${password}`, "-nodes"]);
      assert.equal(info.status, 0, info.stderr);
      const all = info.stdout;
      const details = `${info.stderr}\n${info.stdout}`;
      if (c.legacy) {
        assert.match(details, /MAC: sha1, Iteration 2048/);
        assert.match(details, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
        assert.match(details, /PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
        // 3DES is in OpenSSL 3's default provider; -legacy (which adds RC2 and friends) also works.
        opensslOk(["pkcs12", "-legacy", "-in", file, "-passin", `pass:${password}`, "-nodes", "-noout"]);
      } else {
        assert.match(details, /MAC: sha256, Iteration 2048/);
        assert.match(
          details,
          /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/,
        );
        assert.match(
          details,
          /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/,
        );
      }
      // The friendly name sits on the key and on the leaf, with the same localKeyID.
      assert.equal(all.split(`friendlyName: ${friendlyName}`).length - 1, 2, all);
      const ids = [...all.matchAll(/localKeyID: ([0-9A-F ]+)/g)].map((m) => m[1]?.trim());
      assert.equal(ids.length, 2);
      assert.equal(ids[0], ids[1]);
      const fingerprint = opensslOk([
        "x509",
        "-in",
        f(`${c.keyType}.pem`),
        "-noout",
        "-fingerprint",
        "-sha1",
      ]);
      assert.equal(ids[0]?.replace(/ /g, ""), fingerprint.split("=")[1]?.trim().replace(/:/g, ""));

      const keys = blocks(
        opensslOk(["pkcs12", "-in", file, "-passin", `pass:${password}`, "-nodes", "-nocerts"]),
        "PRIVATE KEY",
      );
      assert.deepEqual(keys, [pkcs8(`${c.keyType}.key`)]);
      const leafOnly = opensslOk([
        "pkcs12",
        "-in",
        file,
        "-passin",
        `pass:${password}`,
        "-nokeys",
        "-clcerts",
      ]);
      assert.deepEqual(blocks(leafOnly, "CERTIFICATE"), blocks(read(`${c.keyType}.pem`), "CERTIFICATE"));
      const caOnly = opensslOk(["pkcs12", "-in", file, "-passin", `pass:${password}`, "-nokeys", "-cacerts"]);
      assert.deepEqual(
        blocks(caOnly, "CERTIFICATE"),
        c.chain.flatMap((n) => blocks(read(n), "CERTIFICATE")),
      );

      createSecureContext({ pfx, passphrase: password });
      assert.throws(() => createSecureContext({ pfx, passphrase: `${password}x` }), /mac verify failure/i);
      const wrong = openssl(["pkcs12", "-in", file, "-passin", "pass:wrong", "-nodes", "-noout"]);
      assert.notEqual(wrong.status, 0);
      assert.match(wrong.stderr, /Mac verify error/);
    });
  }

  test("a non-ASCII password (BMPString for the KDF and MAC, UTF-8 for PBES2) opens with openssl", () => {
    for (const legacy of [false, true]) {
      const password = "pässwörd €";
      const pfx = buildPfx({
        keyPem: read("ec.key"),
        certPem: read("ec.pem"),
        chainPems: [],
        password,
        legacy,
      });
      const file = f(`utf8-${legacy}.pfx`);
      writeFileSync(file, pfx);
      const out = opensslOk(["pkcs12", "-in", file, "-passin", `pass:${password}`, "-nodes"]);
      assert.deepEqual(blocks(out, "PRIVATE KEY"), [pkcs8("ec.key")]);
      createSecureContext({ pfx, passphrase: password });
    }
  });

  test("without a friendly name: only localKeyID; no chain: only the leaf", () => {
    const pfx = buildPfx({ keyPem: read("rsa.key"), certPem: read("rsa.pem"), chainPems: [], password: "x" });
    writeFileSync(f("plain.pfx"), pfx);
    const out = opensslOk(["pkcs12", "-in", f("plain.pfx"), "-passin", "pass:x", "-nodes"]);
    assert.doesNotMatch(out, /friendlyName/);
    assert.equal(blocks(out, "CERTIFICATE").length, 1);
    assert.match(out, /localKeyID/);
  });

  test("the key must belong to the certificate; the certificate must be one", () => {
    assert.throws(
      () => buildPfx({ keyPem: read("rsa.key"), certPem: read("ec.pem"), chainPems: [], password: "x" }),
      /does not belong to the certificate/,
    );
    assert.throws(
      () => buildPfx({ keyPem: read("ec.key"), certPem: "no pem here", chainPems: [], password: "x" }),
      /no CERTIFICATE block/,
    );
  });

  test("an SEC1 EC key and a PKCS#1 RSA key are accepted (stored as PKCS#8)", () => {
    const sec1 = createPrivateKey(read("ec.key")).export({ type: "sec1", format: "pem" }).toString();
    const pkcs1 = createPrivateKey(read("rsa.key")).export({ type: "pkcs1", format: "pem" }).toString();
    for (const [keyPem, cert, key] of [
      [sec1, "ec.pem", "ec.key"],
      [pkcs1, "rsa.pem", "rsa.key"],
    ] as const) {
      const pfx = buildPfx({ keyPem, certPem: read(cert), chainPems: [], password: "pw" });
      writeFileSync(f("conv.pfx"), pfx);
      const out = opensslOk(["pkcs12", "-in", f("conv.pfx"), "-passin", "pass:pw", "-nodes", "-nocerts"]);
      assert.deepEqual(blocks(out, "PRIVATE KEY"), [pkcs8(key)]);
    }
  });

  test("every build has fresh salts and IVs", () => {
    const opts = { keyPem: read("ec.key"), certPem: read("ec.pem"), chainPems: [], password: "pw" };
    assert.notDeepEqual(buildPfx(opts), buildPfx(opts));
  });
});

describe("pkcs12Kdf (RFC 7292 appendix B)", () => {
  // Published vectors (Bouncy Castle's PKCS12 KDF tests), SHA-1.
  test("password smeg, 1 iteration: key and IV", () => {
    const salt = Buffer.from("0A58CF64530D823F", "hex");
    assert.equal(
      pkcs12Kdf("sha1", bmpPassword("smeg"), salt, 1, 1, 24).toString("hex"),
      "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3",
    );
    assert.equal(pkcs12Kdf("sha1", bmpPassword("smeg"), salt, 2, 1, 8).toString("hex"), "79993dfe048d3b76");
  });
  test("password queeg, 1000 iterations", () => {
    const salt = Buffer.from("1682C0FC5B3F7EC5", "hex");
    assert.equal(
      pkcs12Kdf("sha1", bmpPassword("queeg"), salt, 1, 1000, 24).toString("hex"),
      "483dd6e919d7de2e8e648ba8f862f3fbfbdc2bcb2c02957f",
    );
  });
  test("bmpPassword is UTF-16BE with a 0x0000 terminator", () => {
    assert.equal(bmpPassword("aé").toString("hex"), "006100e90000");
    assert.equal(bmpPassword("").toString("hex"), "0000");
  });
});

describe("randomPassword", () => {
  test("24 base64url characters, different each time", () => {
    const a = randomPassword();
    assert.match(a, /^[A-Za-z0-9_-]{24}$/);
    assert.notEqual(a, randomPassword());
  });
});
