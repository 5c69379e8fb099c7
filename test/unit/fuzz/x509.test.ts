/**
 * Fuzz of the certificate reader (src/crypto/x509.ts): a damaged certificate, as DER or PEM, gives
 * the CertInfo fields or a WileError naming the certificate; the error underneath is the DER or PEM
 * reader's typed error or OpenSSL's refusal, never a TypeError or RangeError of wile's own code.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { DerError } from "../../../src/crypto/der";
import { fromPem, PemError, toPem } from "../../../src/crypto/pem";
import {
  ariCertId,
  ChainRejected,
  certMatchesKey,
  checkChain,
  formatSerial,
  parseCertificate,
} from "../../../src/crypto/x509";
import { WileError } from "../../../src/util/errors";
import { fuzz, onlyThrows } from "./fuzz";
import { mutatedBytes, mutatedContent, mutatedText } from "./mutate";

const chain = readFileSync(join(import.meta.dirname, "fixtures", "chain.pem"), "utf8");
const [leafDer, caDer] = fromPem(chain, "CERTIFICATE") as [Buffer, Buffer];
const otherKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;

const input: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 3, arbitrary: mutatedBytes(leafDer) },
  { weight: 4, arbitrary: mutatedContent(leafDer) },
  { weight: 1, arbitrary: mutatedBytes(caDer) },
  { weight: 2, arbitrary: mutatedBytes(leafDer).map((d) => toPem("CERTIFICATE", d)) },
  { weight: 1, arbitrary: mutatedText(chain) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) },
);

/** The cause of a WileError from parseCertificate: a typed reader error or OpenSSL's, nothing else. */
function checkCause(err: Error): void {
  const cause = (err as { cause?: unknown }).cause;
  if (cause === undefined || cause instanceof DerError || cause instanceof PemError) return;
  if (cause instanceof Error && /^ERR_OSSL|^ERR_CRYPTO/.test(String((cause as { code?: unknown }).code)))
    return;
  if (cause instanceof Error && cause.constructor === Error) return;
  throw cause;
}

test("fuzz: parseCertificate and certMatchesKey throw only WileError on damaged certificates", async (t) => {
  await fuzz(
    t,
    "x509",
    0x509,
    fc.property(input, (cert) => {
      const parsed = onlyThrows(WileError, () => parseCertificate(cert, "the fuzzed certificate"));
      if (!parsed.ok) {
        assert.match(parsed.error.message, /^the fuzzed certificate: not a valid X\.509 certificate/);
        checkCause(parsed.error);
        return;
      }
      const info = parsed.value;
      assert.ok(!Number.isNaN(info.notBefore.getTime()) && !Number.isNaN(info.notAfter.getTime()));
      assert.match(info.serialHex, /^-?([0-9A-F]{2})+$/);
      for (const n of [...info.dnsNames, ...info.ipAddresses]) assert.equal(typeof n, "string");
      if (info.authorityKeyId) assert.equal(typeof ariCertId(info), "string");
      const pem = typeof cert === "string" ? cert : toPem("CERTIFICATE", cert);
      const matches = onlyThrows(WileError, () => certMatchesKey(pem, otherKey));
      if (matches.ok) assert.equal(matches.value, false);
    }),
  );
});

test("fuzz: formatSerial spells any INTEGER content as openssl does, without throwing", async (t) => {
  await fuzz(
    t,
    "x509-serial",
    0x50a,
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 24 }), (content) => {
      const text = formatSerial(content);
      const value = BigInt.asIntN(content.length * 8, BigInt(`0x${Buffer.from(content).toString("hex")}`));
      const magnitude = (value < 0n ? -value : value).toString(16).toUpperCase();
      assert.equal(text, `${value < 0n ? "-" : ""}${magnitude.length % 2 ? "0" : ""}${magnitude}`);
    }),
  );
});

/** The chain as a CA may send it after damage: leaf or CA changed inside, cut, reordered, PEM broken. */
const chainInput = fc.oneof(
  {
    weight: 3,
    arbitrary: mutatedContent(leafDer).map((d) => toPem("CERTIFICATE", d) + toPem("CERTIFICATE", caDer)),
  },
  {
    weight: 2,
    arbitrary: mutatedContent(caDer).map((d) => toPem("CERTIFICATE", leafDer) + toPem("CERTIFICATE", d)),
  },
  {
    weight: 1,
    arbitrary: mutatedBytes(caDer).map((d) => toPem("CERTIFICATE", leafDer) + toPem("CERTIFICATE", d)),
  },
  { weight: 1, arbitrary: mutatedText(chain) },
);
const leafKey = new X509Certificate(leafDer).publicKey;

test("fuzz: checkChain refuses a damaged chain from the CA with ChainRejected only", async (t) => {
  await fuzz(
    t,
    "x509-chain",
    0x50b,
    fc.property(chainInput, (pem) => {
      const r = onlyThrows(ChainRejected, () =>
        checkChain(pem, {
          key: leafKey,
          identifiers: [
            { type: "dns", value: "fuzz.example.org" },
            { type: "ip", value: "192.0.2.7" },
          ],
          now: new Date("2027-01-01T00:00:00Z"),
          knownIssuers: chain,
        }),
      );
      if (r.ok) assert.equal(r.value.leaf.subjectCN !== undefined, true);
    }),
  );
});
