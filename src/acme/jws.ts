import { createHash, createHmac, type KeyObject, sign } from "node:crypto";

export type JwsAlgorithm = "ES256" | "ES384" | "RS256";

/** A public JSON Web Key (RFC 7517) of the kinds ACME uses: EC P-256/P-384 or RSA. */
export type JWK = { kty: "EC"; crv: string; x: string; y: string } | { kty: "RSA"; e: string; n: string };

/** RFC 7515 7.2.2 flattened JWS JSON serialization: what an ACME request body is. */
export interface FlattenedJWS {
  protected: string;
  payload: string;
  signature: string;
}

/** An account key ready for signing: the private key, its public JWK and RFC 7638 thumbprint. */
export interface AccountKey {
  privateKey: KeyObject;
  publicJwk: JWK;
  alg: JwsAlgorithm;
  /** base64url(SHA-256 thumbprint), the second half of every key authorization. */
  thumbprint: string;
}

/** Picks the JWS algorithm for a key: ES256 for P-256, ES384 for P-384, RS256 for RSA. */
export function jwsAlgorithm(key: KeyObject): JwsAlgorithm {
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return "ES256";
    if (curve === "secp384r1") return "ES384";
    throw new Error(`unsupported account key curve ${curve}: use P-256, P-384 or RSA`);
  }
  if (key.asymmetricKeyType === "rsa") {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
      throw new Error("RSA account keys must have 2048 bits or more");
    return "RS256";
  }
  throw new Error(
    `unsupported account key type ${key.asymmetricKeyType}: ACME CAs accept P-256, P-384 and RSA`,
  );
}

export async function toAccountKey(privateKey: KeyObject): Promise<AccountKey> {
  const alg = jwsAlgorithm(privateKey);
  const full = privateKey.export({ format: "jwk" });
  // Only the public members, in a fresh object (no "d", "p", ...).
  const publicJwk: JWK =
    full.kty === "EC"
      ? { kty: "EC", crv: String(full.crv), x: String(full.x), y: String(full.y) }
      : { kty: "RSA", e: String(full.e), n: String(full.n) };
  return { privateKey, publicJwk, alg, thumbprint: jwkThumbprint(publicJwk) };
}

/**
 * RFC 7638: base64url(SHA-256) of the required members in lexicographic order, no whitespace
 * (EC: crv, kty, x, y; RSA: e, kty, n). JSON.stringify keeps the order written here.
 */
export function jwkThumbprint(jwk: JWK): string {
  const required =
    jwk.kty === "EC"
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash("sha256").update(JSON.stringify(required)).digest("base64url");
}

/** RFC 8555 8.1: token "." base64url(thumbprint). */
export function keyAuthorization(token: string, key: Pick<AccountKey, "thumbprint">): string {
  return `${token}.${key.thumbprint}`;
}

/** RFC 8555 8.4: the TXT value for dns-01 is base64url(SHA-256(key authorization)). */
export function dns01TxtValue(keyAuth: string): string {
  return createHash("sha256").update(keyAuth).digest("base64url");
}

const b64u = (text: string) => Buffer.from(text).toString("base64url");

/**
 * RFC 7515 5.1: signs base64url(protected) "." base64url(payload) with `key`: ECDSA as r || s of
 * fixed width (RFC 7518 3.4, not DER), RSASSA-PKCS1-v1_5 with SHA-256, or HMAC SHA-256 for a
 * shared secret (EAB).
 */
export function flattenedSign(
  protectedHeader: Record<string, unknown>,
  payload: string,
  key: KeyObject | Uint8Array,
): FlattenedJWS {
  const p = b64u(JSON.stringify(protectedHeader));
  const body = b64u(payload);
  const input = `${p}.${body}`;
  const alg = protectedHeader.alg;
  let signature: Buffer;
  if (alg === "HS256" && !("asymmetricKeyType" in key)) {
    signature = createHmac("sha256", key).update(input).digest();
  } else if ("asymmetricKeyType" in key && alg === jwsAlgorithm(key)) {
    const hash = alg === "ES384" ? "sha384" : "sha256";
    signature = sign(hash, Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  } else {
    throw new Error(`cannot sign ${String(alg)} with this key`);
  }
  return { protected: p, payload: body, signature: signature.toString("base64url") };
}

/**
 * Signs an ACME request body (RFC 8555 6.2). `payload` "" is POST-as-GET. The header carries
 * either the account URL (kid) or, for newAccount and certificate-key revocation, the public JWK.
 */
export async function signRequest(
  key: AccountKey,
  header: { url: string; nonce?: string; kid?: string },
  payload: unknown,
): Promise<FlattenedJWS> {
  const protectedHeader: Record<string, unknown> = { alg: key.alg, url: header.url };
  if (header.nonce !== undefined) protectedHeader.nonce = header.nonce;
  if (header.kid !== undefined) protectedHeader.kid = header.kid;
  else protectedHeader.jwk = key.publicJwk;
  return flattenedSign(protectedHeader, payload === "" ? "" : JSON.stringify(payload), key.privateKey);
}

/**
 * RFC 8555 7.3.4 external account binding: an HS256 JWS over the account's public JWK, keyed by
 * the CA-issued MAC key, with the EAB key id and the newAccount URL; no nonce.
 */
export async function externalAccountBinding(
  key: AccountKey,
  eab: { kid: string; hmacKey: Uint8Array },
  newAccountUrl: string,
): Promise<FlattenedJWS> {
  return flattenedSign(
    { alg: "HS256", kid: eab.kid, url: newAccountUrl },
    JSON.stringify(key.publicJwk),
    eab.hmacKey,
  );
}
