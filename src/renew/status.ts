import type { CertInfo } from "../crypto/x509";
import type { RenewalConfig } from "../store/renewal";
import type { RenewalState } from "../store/state";
import { fallbackRenewalTime } from "./due";

export interface CertStatus {
  /** expired beats failing beats due beats ok. */
  status: "ok" | "due" | "failing" | "expired";
  /** When it is (or was) due, from what is known offline: the cached ARI moment, else the rules. */
  renewAt: Date;
  lastError?: string;
  failures: number;
}

/**
 * What `wile list` shows, without contacting anybody: the ARI moment cached by the last cron
 * run when there is one for this certificate, else --renew-days or the 1/3-of-lifetime rule.
 */
export function certStatus(
  cert: Pick<CertInfo, "notBefore" | "notAfter" | "serialContent">,
  cfg: Pick<RenewalConfig, "renewDays"> | null,
  state: RenewalState,
  now: Date,
): CertStatus {
  const ari = state.ari;
  const ariMoment =
    cfg?.renewDays === undefined && ari?.chosen && ari.certId.endsWith(serialPart(cert.serialContent))
      ? new Date(ari.chosen)
      : null;
  const renewAt = ariMoment ?? fallbackRenewalTime(cert.notBefore, cert.notAfter, cfg?.renewDays);
  // A renewed certificate that did not reach its services is failing too, until a deploy succeeds.
  const lastError =
    state.lastError ?? (state.deployPending ? `deploy failed: ${state.deployPending.error}` : undefined);
  const base = {
    renewAt,
    failures: state.failures,
    ...(lastError ? { lastError } : {}),
  };
  if (cert.notAfter.getTime() <= now.getTime()) return { status: "expired", ...base };
  if (state.failures > 0 || state.deployPending) return { status: "failing", ...base };
  if (renewAt.getTime() <= now.getTime()) return { status: "due", ...base };
  return { status: "ok", ...base };
}

/** The serial half of an ARI CertID (base64url of the serial's DER content bytes, leading 00 included). */
function serialPart(serialContent: Buffer): string {
  return `.${serialContent.toString("base64url")}`;
}
