import { createHash, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, type FlattenedJWS, FlattenedSign, type JWK } from "jose";

export type JwsAlgorithm = "ES256" | "ES384" | "RS256";

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
  const full = await exportJWK(privateKey);
  // Only the public members, in a fresh object (no "d", "p", ...).
  const publicJwk: JWK =
    full.kty === "EC"
      ? { kty: "EC", crv: full.crv, x: full.x, y: full.y }
      : { kty: "RSA", e: full.e, n: full.n };
  const thumbprint = await calculateJwkThumbprint(publicJwk, "sha256");
  return { privateKey, publicJwk, alg, thumbprint };
}

/** RFC 8555 8.1: token "." base64url(thumbprint). */
export function keyAuthorization(token: string, key: Pick<AccountKey, "thumbprint">): string {
  return `${token}.${key.thumbprint}`;
}

/** RFC 8555 8.4: the TXT value for dns-01 is base64url(SHA-256(key authorization)). */
export function dns01TxtValue(keyAuth: string): string {
  return createHash("sha256").update(keyAuth).digest("base64url");
}

const encoder = new TextEncoder();

/**
 * Signs an ACME request body (RFC 8555 6.2). `payload` "" is POST-as-GET. The header carries
 * either the account URL (kid) or, for newAccount and certificate-key revocation, the public JWK.
 */
export async function signRequest(
  key: AccountKey,
  header: { url: string; nonce?: string; kid?: string },
  payload: unknown,
): Promise<FlattenedJWS> {
  const body = payload === "" ? new Uint8Array(0) : encoder.encode(JSON.stringify(payload));
  const protectedHeader: Record<string, unknown> = { alg: key.alg, url: header.url };
  if (header.nonce !== undefined) protectedHeader.nonce = header.nonce;
  if (header.kid !== undefined) protectedHeader.kid = header.kid;
  else protectedHeader.jwk = key.publicJwk;
  return new FlattenedSign(body).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
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
  return new FlattenedSign(encoder.encode(JSON.stringify(key.publicJwk)))
    .setProtectedHeader({ alg: "HS256", kid: eab.kid, url: newAccountUrl })
    .sign(eab.hmacKey);
}
