import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { createCsr } from "../../../src/crypto/csr";
import { privateKeyFromPem } from "../../../src/crypto/keys";
import { fromPem, toPem } from "../../../src/crypto/pem";
import {
  ariCertId,
  type CertInfo,
  certMatchesKey,
  formatSerial,
  parseCertificate,
} from "../../../src/crypto/x509";
import { WileError } from "../../../src/util/errors";
import { opensslOk, tempDir } from "./openssl";

/** Hex pairs ("41:F3:...") from openssl output after `label`, as bytes. */
function hexAfter(text: string, label: RegExp): Buffer {
  const m = new RegExp(`${label.source}[^\\n]*\\n\\s*(?:keyid:)?([0-9A-F:]+)`).exec(text);
  assert.ok(m?.[1], `${label} not found in:\n${text}`);
  return Buffer.from(m[1].replace(/:/g, ""), "hex");
}

function opensslDate(file: string, which: "startdate" | "enddate"): Date {
  const out = opensslOk(["x509", "-in", file, "-noout", "-dateopt", "iso_8601", `-${which}`]);
  return new Date(out.split("=")[1]?.trim().replace(" ", "T") ?? "");
}

describe("parseCertificate on an openssl CA and leaf (RFC 5280)", () => {
  const dir = tempDir();
  const f = (name: string) => join(dir, name);
  let caPem = "";
  let leafPem = "";

  before(() => {
    // CA valid for 10000 days, so its notAfter is a GeneralizedTime (after 2049).
    opensslOk(
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
        "-keyout",
        f("ca.key"),
        "-out",
        f("ca.pem"),
        "-subj",
        "/O=Wile Test/CN=Wile Test CA",
        "-days",
        "10000",
      ]),
    );
    opensslOk(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f("leaf.key")]);
    // The leaf's CSR comes from createCsr, so this also proves openssl signs what wile asks for.
    const leafKey = privateKeyFromPem(readFileSync(f("leaf.key"), "utf8"));
    const csr = createCsr({
      key: leafKey,
      identifiers: [
        { type: "dns", value: "leaf.example" },
        { type: "dns", value: "www.leaf.example" },
        { type: "ip", value: "192.0.2.5" },
        { type: "ip", value: "2001:db8:0:0:1::5" },
      ],
    });
    writeFileSync(f("leaf.csr"), toPem("CERTIFICATE REQUEST", csr));
    writeFileSync(
      f("leaf.ext"),
      "subjectAltName=DNS:leaf.example,DNS:www.leaf.example,IP:192.0.2.5,IP:2001:db8:0:0:1::5\n" +
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n",
    );
    opensslOk(
      ["x509", "-req", "-in", f("leaf.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key")].concat([
        "-set_serial",
        "0x87654321",
        "-days",
        "10",
        "-extfile",
        f("leaf.ext"),
        "-out",
        f("leaf.pem"),
      ]),
    );
    caPem = readFileSync(f("ca.pem"), "utf8");
    leafPem = readFileSync(f("leaf.pem"), "utf8");
  });

  test("serialContent keeps the DER INTEGER's leading 00 (0x87654321 has its top bit set); serialHex does not", () => {
    const info = parseCertificate(leafPem);
    assert.deepEqual(info.serialContent, Buffer.from("0087654321", "hex"));
    assert.equal(info.serialHex, "87654321");
  });

  test("AKI keyIdentifier equals the CA's SKI, as openssl reads them", () => {
    const ca = parseCertificate(caPem);
    const leaf = parseCertificate(leafPem);
    const caText = opensslOk(["x509", "-in", f("ca.pem"), "-noout", "-ext", "subjectKeyIdentifier"]);
    const leafText = opensslOk(["x509", "-in", f("leaf.pem"), "-noout", "-ext", "authorityKeyIdentifier"]);
    const caSki = hexAfter(caText, /Subject Key Identifier:/);
    assert.equal(caSki.length, 20);
    assert.deepEqual(ca.subjectKeyId, caSki);
    assert.deepEqual(leaf.authorityKeyId, hexAfter(leafText, /Authority Key Identifier:/));
    assert.deepEqual(leaf.authorityKeyId, caSki);
    assert.ok(leaf.subjectKeyId && !leaf.subjectKeyId.equals(caSki));
  });

  test("names, SANs and issuer", () => {
    const leaf = parseCertificate(leafPem);
    assert.equal(leaf.subjectCN, "leaf.example");
    assert.equal(leaf.issuerCN, "Wile Test CA");
    assert.equal(leaf.issuer, "O=Wile Test, CN=Wile Test CA");
    assert.deepEqual(leaf.dnsNames, ["leaf.example", "www.leaf.example"]);
    assert.deepEqual(leaf.ipAddresses, ["192.0.2.5", "2001:db8::1:0:0:5"]);
    const ca = parseCertificate(caPem);
    assert.equal(ca.subjectCN, "Wile Test CA");
    assert.deepEqual(ca.dnsNames, []);
  });

  test("validity dates match openssl (UTCTime and GeneralizedTime)", () => {
    const leaf = parseCertificate(leafPem);
    assert.equal(leaf.notBefore.getTime(), opensslDate(f("leaf.pem"), "startdate").getTime());
    assert.equal(leaf.notAfter.getTime(), opensslDate(f("leaf.pem"), "enddate").getTime());
    assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime(), 10 * 86400_000);
    const ca = parseCertificate(caPem);
    assert.ok(ca.notAfter.getUTCFullYear() >= 2050, "CA notAfter should be a GeneralizedTime");
    assert.equal(ca.notAfter.getTime(), opensslDate(f("ca.pem"), "enddate").getTime());
  });

  test("fingerprint and DER match openssl", () => {
    const leaf = parseCertificate(leafPem);
    const fp = opensslOk(["x509", "-in", f("leaf.pem"), "-noout", "-fingerprint", "-sha256"]);
    assert.equal(leaf.fingerprint256, fp.trim().split("=")[1]);
    assert.deepEqual(leaf.der, fromPem(leafPem)[0]);
  });

  test("takes the first certificate of a chain, and accepts DER and PEM bytes", () => {
    const chain = parseCertificate(leafPem + caPem);
    assert.equal(chain.subjectCN, "leaf.example");
    const der = fromPem(leafPem)[0] as Buffer;
    assert.equal(parseCertificate(der).serialHex, "87654321");
    assert.equal(parseCertificate(Buffer.from(caPem)).subjectCN, "Wile Test CA");
    assert.equal(
      parseCertificate(Buffer.from(`subject=CN = Wile Test CA\n${caPem}`)).subjectCN,
      "Wile Test CA",
    );
  });

  test("certMatchesKey: true for the leaf's key, false for another key", () => {
    const leafKey = privateKeyFromPem(readFileSync(f("leaf.key"), "utf8"));
    const caKey = privateKeyFromPem(readFileSync(f("ca.key"), "utf8"));
    assert.equal(certMatchesKey(leafPem, leafKey), true);
    assert.equal(certMatchesKey(leafPem, caKey), false);
    assert.equal(certMatchesKey(caPem, caKey), true);
  });

  test("ariCertId of the leaf is base64url(CA SKI).base64url(00 87 65 43 21) (RFC 9773 4.1)", () => {
    const ca = parseCertificate(caPem);
    const id = ariCertId(parseCertificate(leafPem));
    assert.equal(id, `${ca.subjectKeyId?.toString("base64url")}.AIdlQyE`);
    assert.doesNotMatch(id, /[=+/]/);
  });

  test("garbage and non-certificates give a WileError naming the source", () => {
    const key = readFileSync(f("leaf.key"), "utf8");
    for (const bad of [
      "",
      "not a certificate",
      key,
      Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]),
      Buffer.alloc(0),
    ]) {
      assert.throws(
        () => parseCertificate(bad, "/srv/cert.pem"),
        (err: unknown) =>
          err instanceof WileError && /^\/srv\/cert\.pem: not a valid X\.509 certificate/.test(err.message),
      );
    }
    const der = fromPem(leafPem)[0] as Buffer;
    assert.throws(() => parseCertificate(der.subarray(0, der.length - 1)), WileError);
    assert.throws(() => parseCertificate(Buffer.concat([der, Buffer.from([0])])), WileError);
  });
});

describe("serialHex is the serial as `openssl x509 -serial` prints it (and HAProxy, and wile everywhere)", () => {
  // -set_serial value -> what openssl prints. A leading 0 nibble stays; the 00 byte DER puts before
  // a value whose top bit is set does not; zero is "00" (Node's X509Certificate.serialNumber says
  // "0"); negatives (RFC 5280 forbids them, old certificates have them) print as "-" and magnitude.
  const cases: Array<[string, string]> = [
    ["0x0A1B2C", "0A1B2C"],
    ["0x08", "08"],
    ["0x87654321", "87654321"],
    ["0x0087", "87"],
    ["0x8000", "8000"],
    ["0x00", "00"],
    ["0x0FEDCBA9876543210FEDCBA9876543210FEDCBA9", "0FEDCBA9876543210FEDCBA9876543210FEDCBA9"],
    ["-5", "-05"],
    ["-128", "-80"],
    ["-129", "-81"],
    ["-256", "-0100"],
  ];
  const dir = tempDir();
  const key = join(dir, "k.pem");

  before(() => {
    opensslOk(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
  });

  for (const [serial, printed] of cases) {
    test(`-set_serial ${serial}: ${printed}`, () => {
      const file = join(dir, `${serial}.pem`);
      opensslOk([
        "req",
        "-x509",
        "-key",
        key,
        "-subj",
        "/CN=serial",
        "-days",
        "1",
        "-set_serial",
        serial,
        "-out",
        file,
      ]);
      const byOpenssl = opensslOk(["x509", "-in", file, "-noout", "-serial"])
        .trim()
        .replace(/^serial=/, "");
      assert.equal(byOpenssl, printed, "what this openssl prints");
      const info = parseCertificate(readFileSync(file, "utf8"));
      assert.equal(info.serialHex, printed);
      assert.equal(formatSerial(info.serialContent), printed);
    });
  }
});

describe("ariCertId (RFC 9773 4.1)", () => {
  const rfcExample: Pick<CertInfo, "authorityKeyId" | "serialContent"> = {
    authorityKeyId: Buffer.from("69885B6B87464041E1B37B847BA0AE2CDE01C8D4", "hex"),
    serialContent: Buffer.from("0087654321", "hex"),
  };

  test("matches the RFC example", () => {
    assert.equal(ariCertId(rfcExample), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  });

  test("throws when the certificate has no AKI", () => {
    assert.throws(() => ariCertId({ ...rfcExample, authorityKeyId: null }), /Authority Key Identifier/);
  });
});
