/**
 * A PKCS#12 (RFC 7292) writer: one private key, its certificate and the chain, password-protected,
 * for Windows (Exchange, IIS) and anything else that imports a .pfx.
 *
 * Two flavours:
 * - modern (default), what OpenSSL 3 writes: the key in a pkcs8ShroudedKeyBag and the
 *   certificates in an encryptedData SafeContents, both PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC);
 *   MAC HMAC-SHA256 keyed by the PKCS#12 KDF. Windows 10 1709+ and Windows Server 2019+ import it.
 * - legacy: pbeWithSHAAnd3-KeyTripleDES-CBC for the key and the certificates (not RC2-40, which
 *   OpenSSL 3 only has in its legacy provider), MAC HMAC-SHA1. For Windows Server 2016 and older,
 *   which reject AES-protected PFX files ("the password you entered is incorrect").
 *
 * Passwords: the PKCS#12 KDF (MAC key, 3DES key and IV) takes the password as a BMPString with a
 * trailing 0x0000 (RFC 7292 B.1); PBES2 takes its UTF-8 bytes, as OpenSSL and Windows do. Keep
 * passwords ASCII for the widest interoperability (randomPassword() is).
 */
import {
  createCipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  pbkdf2Sync,
  randomBytes,
  X509Certificate,
} from "node:crypto";
import { contextSpecific, integer, nullValue, octetString, oid, sequence, set, tlv } from "./der";
import { fromPem } from "./pem";

export interface PfxOptions {
  /** The private key, PEM (PKCS#8, SEC1 or PKCS#1, unencrypted). */
  keyPem: string;
  /** The leaf certificate, PEM (the first CERTIFICATE block is used). */
  certPem: string;
  /** Issuer certificates, leaf's issuer first; each string may hold several PEM blocks. */
  chainPems: string[];
  password: string;
  /** Shown by Windows' certificate manager and Exchange (attribute on the key and the leaf). */
  friendlyName?: string;
  /** 3DES and SHA-1, for Windows Server 2016 and older. */
  legacy?: boolean;
  /** Iteration count for PBKDF2, the PKCS#12 KDF and the MAC (default 2048, as OpenSSL 3). */
  iterations?: number;
}

const OID = {
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  pkcs8ShroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSHA256: "1.2.840.113549.2.9",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
  pbeWithSHAAnd3KeyTripleDESCBC: "1.2.840.113549.1.12.1.3",
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
} as const;

export const DEFAULT_ITERATIONS = 2048;

/** A random password of 24 base64url characters (144 bits), ASCII so every importer agrees on it. */
export function randomPassword(): string {
  return randomBytes(18).toString("base64url");
}

/** The password as the PKCS#12 KDF wants it: BMPString (UTF-16BE) bytes plus a 0x0000 terminator. */
export function bmpPassword(password: string): Buffer {
  const utf16be = Buffer.from(password, "utf16le").swap16();
  return Buffer.concat([utf16be, Buffer.alloc(2)]);
}

/**
 * The PKCS#12 key derivation (RFC 7292 appendix B.2): `n` bytes for purpose `id` (1 key, 2 IV,
 * 3 MAC key) from the BMP password bytes (bmpPassword), a salt and an iteration count.
 */
export function pkcs12Kdf(
  hash: "sha1" | "sha256",
  passwordBmp: Buffer,
  salt: Buffer,
  id: 1 | 2 | 3,
  iterations: number,
  n: number,
): Buffer {
  const u = hash === "sha1" ? 20 : 32;
  const v = 64; // block size of SHA-1 and SHA-256
  const fill = (src: Buffer): Buffer => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length] as number;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(passwordBmp)]);
  const blocks: Buffer[] = [];
  for (let done = 0; done < n; done += u) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest();
    blocks.push(A);
    if (done + u >= n) break;
    // I_j = (I_j + B + 1) mod 2^(8v), where B is A repeated to v bytes.
    const B = fill(A).subarray(0, v);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = (I[j + k] as number) + (B[k] as number) + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, n);
}

/** What the encryption of one piece (key or certificate SafeContents) produced. */
interface Encrypted {
  algorithm: Buffer;
  ciphertext: Buffer;
}

function encryptPbes2(plain: Buffer, password: string, iterations: number): Encrypted {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256");
  const cipher = createCipheriv("aes-256-cbc", key, iv);
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  const algorithm = sequence(
    oid(OID.pbes2),
    sequence(
      sequence(
        oid(OID.pbkdf2),
        sequence(octetString(salt), integer(iterations), sequence(oid(OID.hmacWithSHA256), nullValue())),
      ),
      sequence(oid(OID.aes256Cbc), octetString(iv)),
    ),
  );
  return { algorithm, ciphertext };
}

function encrypt3des(plain: Buffer, password: string, iterations: number): Encrypted {
  const salt = randomBytes(8);
  const bmp = bmpPassword(password);
  const key = pkcs12Kdf("sha1", bmp, salt, 1, iterations, 24);
  const iv = pkcs12Kdf("sha1", bmp, salt, 2, iterations, 8);
  const cipher = createCipheriv("des-ede3-cbc", key, iv);
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  const algorithm = sequence(
    oid(OID.pbeWithSHAAnd3KeyTripleDESCBC),
    sequence(octetString(salt), integer(iterations)),
  );
  return { algorithm, ciphertext };
}

function bmpString(s: string): Buffer {
  return tlv(0x1e, Buffer.from(s, "utf16le").swap16());
}

function attributes(friendlyName: string | undefined, localKeyId: Buffer): Buffer {
  const attrs = [sequence(oid(OID.localKeyId), set(octetString(localKeyId)))];
  if (friendlyName !== undefined) attrs.push(sequence(oid(OID.friendlyName), set(bmpString(friendlyName))));
  return set(...attrs);
}

function safeBag(bagId: string, value: Buffer, attrs?: Buffer): Buffer {
  return sequence(oid(bagId), contextSpecific(0, value, true), ...(attrs ? [attrs] : []));
}

/** ContentInfo of type data wrapping DER bytes. */
function dataContentInfo(content: Buffer): Buffer {
  return sequence(oid(OID.data), contextSpecific(0, octetString(content), true));
}

function encryptedDataContentInfo(enc: Encrypted): Buffer {
  // EncryptedData ::= SEQUENCE { version 0, EncryptedContentInfo { data, algorithm, [0] IMPLICIT OCTET STRING } }
  const encryptedData = sequence(
    integer(0),
    sequence(oid(OID.data), enc.algorithm, contextSpecific(0, enc.ciphertext, false)),
  );
  return sequence(oid(OID.encryptedData), contextSpecific(0, encryptedData, true));
}

function certificatesDer(pem: string, what: string): Buffer[] {
  const ders = fromPem(pem, "CERTIFICATE");
  for (const der of ders) {
    try {
      new X509Certificate(der);
    } catch (err) {
      throw new Error(`${what}: not a valid certificate (${(err as Error).message})`);
    }
  }
  return ders;
}

/**
 * A DER PFX holding the key (with friendlyName and localKeyId), the leaf certificate (same
 * attributes) and the chain. Throws Error when the key does not belong to the certificate.
 */
export function buildPfx(opts: PfxOptions): Buffer {
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1)
    throw new Error(`bad iteration count ${iterations}`);
  // A lone UTF-16 surrogate has no UTF-8 form: PBES2 would be keyed with U+FFFD and the MAC with the
  // surrogate, and no tool could open the file with any password.
  if (/\p{Cs}/u.test(opts.password))
    throw new Error("the password is not valid Unicode text (it holds a lone UTF-16 surrogate)");
  const key = createPrivateKey({ key: opts.keyPem, format: "pem" });
  const [leaf] = certificatesDer(opts.certPem, "the certificate");
  if (!leaf) throw new Error("the certificate: no CERTIFICATE block found");
  const leafX509 = new X509Certificate(leaf);
  if (!leafX509.checkPrivateKey(key)) throw new Error("the private key does not belong to the certificate");
  const chain = opts.chainPems.flatMap((p, i) => certificatesDer(p, `chain certificate ${i + 1}`));

  const encryptWith = opts.legacy ? encrypt3des : encryptPbes2;
  const localKeyId = createHash("sha1").update(leaf).digest();
  const attrs = attributes(opts.friendlyName, localKeyId);

  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  const shrouded = encryptWith(pkcs8, opts.password, iterations);
  const keyBag = safeBag(
    OID.pkcs8ShroudedKeyBag,
    sequence(shrouded.algorithm, octetString(shrouded.ciphertext)),
    attrs,
  );

  const certBag = (der: Buffer, a?: Buffer) =>
    safeBag(OID.certBag, sequence(oid(OID.x509Certificate), contextSpecific(0, octetString(der), true)), a);
  const certSafe = sequence(certBag(leaf, attrs), ...chain.map((der) => certBag(der)));

  // Certificates first, then the key, as OpenSSL and Windows order them.
  const authSafe = sequence(
    encryptedDataContentInfo(encryptWith(certSafe, opts.password, iterations)),
    dataContentInfo(sequence(keyBag)),
  );

  const hash = opts.legacy ? "sha1" : "sha256";
  const macSalt = randomBytes(opts.legacy ? 8 : 16);
  const macKey = pkcs12Kdf(
    hash,
    bmpPassword(opts.password),
    macSalt,
    3,
    iterations,
    hash === "sha1" ? 20 : 32,
  );
  const mac = createHmac(hash, macKey).update(authSafe).digest();
  const macData = sequence(
    sequence(sequence(oid(hash === "sha1" ? OID.sha1 : OID.sha256), nullValue()), octetString(mac)),
    octetString(macSalt),
    integer(iterations),
  );
  return sequence(integer(3), dataContentInfo(authSafe), macData);
}
