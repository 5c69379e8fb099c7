/**
 * The certificate fields wile needs. Node's X509Certificate validates the encoding and gives the
 * fingerprint and public key; the serial, the key identifiers, dates, CNs and SANs come from the
 * DER, because Node 20 has no AKI/SKI accessors, formats dates and names as text only, and spells
 * some serials differently from openssl (zero as "0").
 */
import { type KeyObject, X509Certificate } from "node:crypto";
import { WileError } from "../util/errors";
import { children, type DerNode, decodeOid, decodeString, decodeTime, readDer } from "./der";
import { ipFromBytes } from "./ip";
import { publicKeyDer } from "./keys";
import { fromPem } from "./pem";

export interface CertInfo {
  /** The serial as wile prints and compares it everywhere: formatSerial(serialContent). */
  serialHex: string;
  /** The serial INTEGER's DER content bytes, with the leading 00 it may have (the ARI CertID's half). */
  serialContent: Buffer;
  /** keyIdentifier [0] of the Authority Key Identifier extension. */
  authorityKeyId: Buffer | null;
  subjectKeyId: Buffer | null;
  notBefore: Date;
  notAfter: Date;
  issuerCN: string | null;
  subjectCN: string | null;
  /** Issuer DN as Node prints it, one "key=value" per RDN, joined with ", ". */
  issuer: string;
  dnsNames: string[];
  /** IPv4 dotted, IPv6 in RFC 5952 form. */
  ipAddresses: string[];
  /** SHA-256 fingerprint, colon-separated uppercase hex. */
  fingerprint256: string;
  der: Buffer;
}

const OID_CN = "2.5.4.3";
const OID_SKI = "2.5.29.14";
const OID_SAN = "2.5.29.17";
const OID_AKI = "2.5.29.35";

/**
 * Fields of a certificate given as DER or PEM (the first certificate of a chain). Throws WileError,
 * naming `source` when given, if the input is not a certificate.
 */
export function parseCertificate(pemOrDer: string | Uint8Array, source = "certificate"): CertInfo {
  try {
    const der = certificateDer(pemOrDer);
    const x509 = new X509Certificate(der);
    return {
      ...readFields(der),
      der,
      issuer: x509.issuer.split("\n").join(", "),
      fingerprint256: x509.fingerprint256,
    };
  } catch (err) {
    throw new WileError(`${source}: not a valid X.509 certificate (${(err as Error).message})`, {
      hint: "Check that the file holds a PEM certificate (-----BEGIN CERTIFICATE-----) and is not truncated.",
      cause: err,
    });
  }
}

/** DER of the first certificate: bytes starting with a SEQUENCE tag are DER, anything else is PEM text. */
function certificateDer(input: string | Uint8Array): Buffer {
  if (typeof input !== "string" && input[0] === 0x30) return Buffer.from(input);
  const text = typeof input === "string" ? input : Buffer.from(input).toString("latin1");
  const [first] = fromPem(text, "CERTIFICATE");
  if (!first) throw new Error("no CERTIFICATE block found");
  return first;
}

type DerFields = Omit<CertInfo, "der" | "issuer" | "fingerprint256">;

function readFields(der: Buffer): DerFields {
  const cert = readDer(der);
  if (cert.raw.length !== der.length) throw new Error("trailing bytes after the certificate");
  const [tbs] = children(cert);
  if (!tbs) throw new Error("empty certificate");
  const fields = children(tbs);
  // An optional [0] EXPLICIT version comes first.
  const rest = fields[0]?.tagClass === "context" && fields[0].tagNumber === 0 ? fields.slice(1) : fields;
  const [serial, , issuer, validity, subject] = rest;
  if (!serial || !issuer || !validity || !subject) throw new Error("incomplete TBSCertificate");
  const [notBefore, notAfter] = children(validity);
  if (!notBefore || !notAfter) throw new Error("incomplete validity");
  const extensions = new Map<string, Buffer>();
  const extWrapper = rest.find((n) => n.tagClass === "context" && n.tagNumber === 3);
  // extensions [3] EXPLICIT SEQUENCE OF Extension; Extension ::= { extnID, critical?, extnValue }
  const extList = extWrapper ? children(extWrapper)[0] : undefined;
  for (const ext of extList ? children(extList) : []) {
    const parts = children(ext);
    const id = parts[0];
    const value = parts[parts.length - 1];
    if (id && value) extensions.set(decodeOid(id.content), value.content);
  }
  const names = extensions.has(OID_SAN) ? generalNames(extensions.get(OID_SAN) as Buffer) : [];
  return {
    serialHex: formatSerial(serial.content),
    serialContent: Buffer.from(serial.content),
    authorityKeyId: authorityKeyId(extensions.get(OID_AKI)),
    subjectKeyId: extensions.has(OID_SKI)
      ? Buffer.from(readDer(extensions.get(OID_SKI) as Buffer).content)
      : null,
    notBefore: decodeTime(notBefore),
    notAfter: decodeTime(notAfter),
    issuerCN: commonName(issuer),
    subjectCN: commonName(subject),
    dnsNames: names.filter((n) => n.tagNumber === 2).map((n) => n.content.toString("latin1")),
    ipAddresses: names.filter((n) => n.tagNumber === 7).map((n) => ipFromBytes(n.content)),
  };
}

/**
 * A serial number as `openssl x509 -serial` and HAProxy's `show ssl cert` print it: the value in
 * uppercase hex, two digits per byte (so a leading 0 nibble stays: "0A1B"), without the 00 byte
 * DER puts before a value whose top bit is set ("87654321", not "0087654321"); zero is "00". A
 * negative serial (forbidden by RFC 5280, seen in old certificates) is "-" and its magnitude, as
 * openssl prints it. `content` is the INTEGER's DER content bytes (CertInfo.serialContent).
 */
export function formatSerial(content: Uint8Array): string {
  const bytes = Buffer.from(content);
  const negative = ((bytes[0] ?? 0) & 0x80) !== 0;
  if (negative) {
    // Two's complement to magnitude: invert, add one.
    let carry = 1;
    for (let i = bytes.length - 1; i >= 0; i--) {
      const v = (~(bytes[i] as number) & 0xff) + carry;
      bytes[i] = v & 0xff;
      carry = v >> 8;
    }
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return `${negative ? "-" : ""}${bytes.subarray(start).toString("hex").toUpperCase()}`;
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... } */
function authorityKeyId(value: Buffer | undefined): Buffer | null {
  if (!value) return null;
  const keyId = children(readDer(value)).find((n) => n.tagClass === "context" && n.tagNumber === 0);
  return keyId ? Buffer.from(keyId.content) : null;
}

function generalNames(value: Buffer): DerNode[] {
  return children(readDer(value)).filter((n) => n.tagClass === "context");
}

/** The last CN in a Name (the most specific one), or null. */
function commonName(name: DerNode): string | null {
  let cn: string | null = null;
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (type && value && decodeOid(type.content) === OID_CN) cn = decodeString(value);
    }
  }
  return cn;
}

/**
 * Whether the certificate (PEM) carries the public part of `key`. Throws WileError, naming `source`,
 * if it is not a certificate or its public key cannot be read (an unknown algorithm, a damaged key).
 */
export function certMatchesKey(certPem: string, key: KeyObject, source = "certificate"): boolean {
  const cert = new X509Certificate(parseCertificate(certPem, source).der);
  let publicKey: KeyObject;
  try {
    publicKey = cert.publicKey;
  } catch (err) {
    throw new WileError(`${source}: its public key cannot be read (${(err as Error).message})`, {
      hint: "The certificate is damaged or holds a key type wile does not know (it uses RSA and EC keys).",
      cause: err,
    });
  }
  return publicKeyDer(publicKey).equals(publicKeyDer(key));
}

/** RFC 9773 CertID: base64url(AKI keyIdentifier) "." base64url(serial content bytes), no padding. */
export function ariCertId(info: Pick<CertInfo, "authorityKeyId" | "serialContent">): string {
  if (!info.authorityKeyId) {
    throw new Error("the certificate has no Authority Key Identifier, so it has no ARI CertID");
  }
  return `${info.authorityKeyId.toString("base64url")}.${info.serialContent.toString("base64url")}`;
}
