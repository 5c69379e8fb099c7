/**
 * PKCS#10 certificate signing requests (RFC 2986) for ACME finalize (RFC 8555 7.4): the
 * identifiers go into subjectAltName, the first short DNS name also into the subject CN.
 */
import { type KeyObject, sign } from "node:crypto";
import type { Identifier } from "../acme/types";
import { WileError } from "../util/errors";
import * as der from "./der";
import { ipToBytes } from "./ip";
import { keyTypeOf, publicKeyDer } from "./keys";

export interface CsrOptions {
  /** The certificate's private key; it signs the request. */
  key: KeyObject;
  /** Every identifier of the order, in order; all go into subjectAltName. */
  identifiers: Identifier[];
  /** Ask for the TLS Feature extension status_request (OCSP Must-Staple, RFC 7633). */
  mustStaple?: boolean;
}

const OID = {
  commonName: "2.5.4.3",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectAltName: "2.5.29.17",
  tlsFeature: "1.3.6.1.5.5.7.1.24",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  sha256WithRsa: "1.2.840.113549.1.1.11",
};

/** CN is an ub-common-name (64 characters) string at most (RFC 5280 appendix A). */
const MAX_CN = 64;

/** DER of a CertificationRequest for `identifiers`, signed by `key`. */
export function createCsr(opts: CsrOptions): Buffer {
  const { key, identifiers } = opts;
  if (identifiers.length === 0) throw new Error("a CSR needs at least one identifier");
  if (key.type !== "private")
    throw new Error(`a CSR must be signed with a private key, got a ${key.type} key`);
  const keyType = keyTypeOf(key);
  if (keyType === null) {
    throw new Error(`unsupported key type for a CSR: ${key.asymmetricKeyType ?? key.type}`);
  }
  const [algorithm, hash] =
    keyType === "ec-256"
      ? [der.sequence(der.oid(OID.ecdsaWithSha256)), "sha256"]
      : keyType === "ec-384"
        ? [der.sequence(der.oid(OID.ecdsaWithSha384)), "sha384"]
        : [der.sequence(der.oid(OID.sha256WithRsa), der.nullValue()), "sha256"];

  const firstDns = identifiers.find((i) => i.type === "dns")?.value;
  const subject =
    firstDns !== undefined && firstDns.length <= MAX_CN
      ? der.sequence(der.set(der.sequence(der.oid(OID.commonName), der.utf8String(firstDns))))
      : der.sequence();

  // RFC 5280 4.2.1.6: with an empty subject, subjectAltName must be critical.
  const extensions = [extension(OID.subjectAltName, subject.length === 2, subjectAltName(identifiers))];
  if (opts.mustStaple) extensions.push(extension(OID.tlsFeature, false, der.sequence(der.integer(5))));
  const extensionRequest = der.sequence(der.oid(OID.extensionRequest), der.set(der.sequence(...extensions)));

  const info = der.sequence(
    der.integer(0),
    subject,
    publicKeyDer(key),
    der.contextSpecific(0, extensionRequest, true),
  );
  const signature = sign(hash, info, { key, dsaEncoding: "der" });
  return der.sequence(info, algorithm, der.bitString(signature));
}

/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }. */
export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

/**
 * GeneralNames: dNSName [2] IA5String, iPAddress [7] OCTET STRING (both IMPLICIT). A name that
 * cannot be written (not ASCII, not an IP address) is a WileError naming it: names come from
 * renewal.json too, which may have been edited by hand.
 */
export function subjectAltName(identifiers: Identifier[]): Buffer {
  const refuse = (what: string, why: string, err: unknown): never => {
    throw new WileError(`${what} cannot go in a certificate request: ${why}`, {
      hint: "Names are ASCII (an internationalised name in its xn-- form) and IP addresses plain IPv4 or IPv6 text: check the names given to wile issue or in the certificate's renewal.json.",
      cause: err,
    });
  };
  return der.sequence(
    ...identifiers.map((id) => {
      if (id.type === "ip") {
        try {
          return der.contextSpecific(7, ipToBytes(id.value), false);
        } catch (err) {
          return refuse(
            `the IP address ${JSON.stringify(id.value)}`,
            "it is not an IPv4 or IPv6 address",
            err,
          );
        }
      }
      if (id.type === "dns") {
        try {
          return der.contextSpecific(2, der.readDer(der.ia5String(id.value)).content, false);
        } catch (err) {
          return refuse(`the DNS name ${JSON.stringify(id.value)}`, "it is not ASCII", err);
        }
      }
      throw new Error(`unsupported identifier type "${(id as Identifier).type}"`);
    }),
  );
}
