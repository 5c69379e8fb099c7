/**
 * The certificate fields wile needs. Node's X509Certificate validates the encoding and gives the
 * fingerprint and public key; the serial, the key identifiers, dates, CNs and SANs come from the
 * DER, because Node 20 has no AKI/SKI accessors, formats dates and names as text only, and spells
 * some serials differently from openssl (zero as "0").
 */
import { type KeyObject, X509Certificate } from "node:crypto";
import { WileError } from "../util/errors";
import { printable } from "../util/text";
import { children, type DerNode, decodeOid, decodeString, decodeTime, readDer } from "./der";
import { ipFromBytes } from "./ip";
import { publicKeyDer } from "./keys";
import { fromPem, toPem } from "./pem";

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

/** What checkChain needs to know about the request the chain answers. */
export interface ChainExpectations {
  /** The certificate key: the leaf must carry its public part (the one in the CSR). */
  key: KeyObject;
  /** Every name asked for: the leaf's SANs must hold each (dNSName, or iPAddress for "ip"). */
  identifiers: ReadonlyArray<{ type: string; value: string }>;
  now: Date;
  /** Clock difference tolerated in both directions; default 5 minutes. */
  skewMs?: number;
  /** PEM certificates already trusted for this name (the current version's chain.pem). */
  knownIssuers?: string;
}

export interface CheckedChain {
  leaf: CertInfo;
  /** The leaf and the issuer certificates, each normalised PEM. */
  leafPem: string;
  chainPem: string;
  /** How the chain verified, for the log: leaf -> issuer -> ... -> what it ends at. */
  verified: string;
  /** Things that do not stop the install (an expired cross-signature near the top). */
  warnings: string[];
}

/**
 * A certificate chain refused by checkChain. The message completes "the CA sent ...", so the caller
 * can name the CA: "a certificate that expired on ...".
 */
export class ChainRejected extends WileError {}

const DEFAULT_SKEW_MS = 5 * 60_000;

/**
 * Checks a chain a CA sent (leaf first) before anything of it is installed: every block parses;
 * the leaf is valid now (notBefore no later than now + skew, for a CA whose clock is ahead; not
 * expired: no skew there, since short-lived certificates of minutes are legitimate), is
 * for `key` and names every identifier; each certificate is issued by the next one, a CA, and its
 * signature verifies with that one's key (so an unrelated CA certificate in the chain is refused).
 * The chain's top is reported as a self-signed root, an issuer found in `knownIssuers`, or an
 * issuer not sent (a root the TLS clients trust): not knowing the root is not an error, since CAs
 * change intermediates and roots. Throws ChainRejected naming what is wrong.
 */
export function checkChain(pem: string, expect: ChainExpectations): CheckedChain {
  let ders: Buffer[];
  try {
    ders = fromPem(pem, "CERTIFICATE");
  } catch (err) {
    throw new ChainRejected(`a certificate chain that is not valid PEM (${(err as Error).message})`);
  }
  if (ders.length === 0) throw new ChainRejected("no certificate (the answer has no CERTIFICATE block)");
  const certs = ders.map((der, i) => {
    const what = i === 0 ? "the leaf certificate" : `certificate ${i + 1} of the chain`;
    let cert: { x509: X509Certificate; info: CertInfo; pem: string };
    try {
      const x509 = new X509Certificate(der);
      cert = { x509, info: parseCertificate(der, what), pem: toPem("CERTIFICATE", der) };
    } catch (err) {
      // OpenSSL's own text says little here ("PEM routines::no start line" for bad DER); the DER
      // reader's (from parseCertificate) says where the structure breaks.
      const cause = err instanceof WileError && err.cause instanceof Error ? err.cause.message : "";
      const why = cause && !cause.startsWith("error:") ? printable(cause, 200) : "it does not decode as DER";
      throw new ChainRejected(`a chain in which ${what} is not a valid X.509 certificate (${why})`);
    }
    // Node parses the key only when asked: an unknown algorithm or a damaged key throws OpenSSL's error.
    try {
      return { ...cert, publicKey: cert.x509.publicKey };
    } catch (err) {
      throw new ChainRejected(
        `a chain in which ${what} holds a public key that cannot be read (${printable((err as Error).message, 200)})`,
      );
    }
  });
  const [leaf, ...issuers] = certs as [(typeof certs)[number], ...typeof certs];
  checkLeaf(leaf.info, leaf.publicKey, expect);
  if (issuers.length === 0) {
    throw new ChainRejected(
      `only the leaf certificate, without the certificate of its issuer ${quote(leaf.info.issuerCN ?? leaf.info.issuer)}: TLS clients could not verify it`,
    );
  }
  const warnings: string[] = [];
  const now = expect.now.getTime();
  for (let i = 0; i + 1 < certs.length; i++) {
    const child = certs[i] as (typeof certs)[number];
    const parent = certs[i + 1] as (typeof certs)[number];
    const c = nameOf(child.info, i);
    const p = nameOf(parent.info, i + 1);
    if (!child.x509.checkIssued(parent.x509)) {
      throw new ChainRejected(
        `a chain that does not link: ${c} was not issued by the next certificate in the chain, ${p} (it names ${quote(child.info.issuer)} as its issuer)`,
      );
    }
    if (!parent.x509.ca) {
      throw new ChainRejected(`a chain in which ${p}, the issuer of ${c}, is not a CA certificate`);
    }
    if (!child.x509.verify(parent.publicKey)) {
      throw new ChainRejected(`a chain in which the signature on ${c} does not verify with the key of ${p}`);
    }
    if (parent.info.notAfter.getTime() <= now || parent.info.notBefore.getTime() > now + DEFAULT_SKEW_MS) {
      warnings.push(
        `${p} in the chain is not valid now (${parent.info.notBefore.toISOString()} to ${parent.info.notAfter.toISOString()})`,
      );
    }
  }
  const top = certs[certs.length - 1] as (typeof certs)[number];
  const path = certs.map((c, i) => nameOf(c.info, i)).join(" -> ");
  return {
    leaf: leaf.info,
    leafPem: leaf.pem,
    chainPem: issuers.map((c) => c.pem).join(""),
    verified: `${path}, each signed by the next; ${anchorOf(top.x509, top.info, expect.knownIssuers)}`,
    warnings,
  };
}

function checkLeaf(info: CertInfo, publicKey: KeyObject, expect: ChainExpectations): void {
  const skew = expect.skewMs ?? DEFAULT_SKEW_MS;
  const now = expect.now.getTime();
  if (info.notAfter.getTime() <= now) {
    throw new ChainRejected(`a certificate that expired on ${info.notAfter.toISOString()}`);
  }
  if (info.notBefore.getTime() > now + skew) {
    throw new ChainRejected(
      `a certificate that is not valid before ${info.notBefore.toISOString()} (this machine's clock says ${expect.now.toISOString()})`,
    );
  }
  if (!publicKeyDer(publicKey).equals(publicKeyDer(expect.key))) {
    throw new ChainRejected("a certificate for another key than the one in wile's request (CSR)");
  }
  const dns = new Set(info.dnsNames.map((n) => n.toLowerCase()));
  const ips = new Set(info.ipAddresses);
  const missing = expect.identifiers
    .filter((id) => (id.type === "ip" ? !ips.has(id.value) : !dns.has(id.value.toLowerCase())))
    .map((id) => id.value);
  if (missing.length > 0) {
    const has = [...info.dnsNames, ...info.ipAddresses].map((n) => printable(n, 100));
    throw new ChainRejected(
      `a certificate without ${missing.join(", ")} (it names ${has.length > 0 ? has.join(", ") : "nothing"})`,
    );
  }
}

/** Where the chain's top leads: itself (a self-signed root), a known issuer, or an issuer not sent. */
function anchorOf(top: X509Certificate, info: CertInfo, knownIssuers: string | undefined): string {
  const issuer = quote(info.issuerCN ?? info.issuer);
  if (top.checkIssued(top) && top.verify(top.publicKey)) return `it ends at the self-signed root ${issuer}`;
  let known: Buffer[] = [];
  try {
    known = knownIssuers ? fromPem(knownIssuers, "CERTIFICATE") : [];
  } catch {}
  for (const der of known) {
    try {
      const k = new X509Certificate(der);
      if (top.fingerprint256 === k.fingerprint256) {
        return `its top certificate is the one in the current certificate's chain; its issuer ${issuer} was not sent (a root the TLS clients trust)`;
      }
      if (top.checkIssued(k) && top.verify(k.publicKey)) {
        return `its top certificate verifies with ${issuer} from the current certificate's chain`;
      }
    } catch {}
  }
  return `its issuer ${issuer} was not sent (a root the TLS clients trust) and is not known to wile`;
}

/** A certificate of the chain in a message: the leaf "CN", "CN", or its place when it has no CN. */
function nameOf(info: CertInfo, index: number): string {
  if (index === 0) return info.subjectCN ? `the leaf ${quote(info.subjectCN)}` : "the leaf";
  return info.subjectCN ? quote(info.subjectCN) : `certificate ${index + 1}`;
}

/** CA-supplied text in a message: printable, capped, quoted. */
function quote(text: string): string {
  return `"${printable(text, 100)}"`;
}
