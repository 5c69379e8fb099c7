import { WileError } from "../util/errors";
import type { AcmeClient, Signer } from "./client";

/**
 * RFC 5280 5.3.1 reason codes that Let's Encrypt accepts for ACME revocation (RFC 8555 7.6).
 * Other codes exist (affiliationChanged 3, ...) but CAs refuse them, so wile does not offer them.
 */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  superseded: 4,
  cessationOfOperation: 5,
} as const;

export type RevocationReason = keyof typeof REVOCATION_REASONS;

export const REVOCATION_REASON_NAMES = Object.keys(REVOCATION_REASONS) as RevocationReason[];

export function isRevocationReason(s: string): s is RevocationReason {
  return Object.hasOwn(REVOCATION_REASONS, s);
}

/** The revokeCert payload: `{certificate: base64url(DER), reason}`. */
export function revocationPayload(
  certDer: Uint8Array,
  reason: RevocationReason,
): { certificate: string; reason: number } {
  return { certificate: Buffer.from(certDer).toString("base64url"), reason: REVOCATION_REASONS[reason] };
}

/**
 * RFC 8555 7.6: asks the CA to revoke a certificate. Signed as an account (`AccountSession.signer`,
 * kid header) or with the certificate's own key (`{ key }`, jwk header, no account needed).
 */
export async function revokeCertificate(
  client: AcmeClient,
  certDer: Uint8Array,
  reason: RevocationReason,
  signer: Signer,
): Promise<void> {
  const dir = await client.directory();
  if (!dir.revokeCert) {
    throw new WileError(`the CA at ${client.directoryUrl} offers no revokeCert in its directory`, {
      hint: "This CA does not support revocation through ACME; use its web interface.",
    });
  }
  const payload = revocationPayload(certDer, reason);
  await client.post(dir.revokeCert, payload, signer);
}
