import { parseCertificate } from "../crypto/x509";
import { daysLeft, fallbackRenewalTime } from "../renew/due";
import type { RenewalConfig } from "../store/renewal";
import { NotDueError } from "../util/errors";

/**
 * Whether `wile issue` (and each line of `wile issue --batch`) leaves the current certificate
 * `certPem` in place: it names exactly cfg's identifiers and its renewal time (renewDays, else a
 * third of its lifetime left) has not come. A certificate for other names is replaced at once.
 */
export function checkNotDue(
  certPem: string,
  file: string,
  cfg: Pick<RenewalConfig, "name" | "identifiers" | "renewDays">,
  now: Date = new Date(),
): { notDue: NotDueError | null; namesDiffer: boolean } {
  const info = parseCertificate(certPem, file);
  const have = new Set([...info.dnsNames, ...info.ipAddresses]);
  const sameNames = cfg.identifiers.length === have.size && cfg.identifiers.every((i) => have.has(i.value));
  const renewAt = fallbackRenewalTime(info.notBefore, info.notAfter, cfg.renewDays);
  if (!sameNames || now.getTime() >= renewAt.getTime()) return { notDue: null, namesDiffer: !sameNames };
  return {
    notDue: new NotDueError(
      `${cfg.name} has a certificate valid until ${info.notAfter.toISOString()} (${daysLeft(info.notAfter, now)} days left); it is not due for renewal before ${renewAt.toISOString()}`,
      { hint: "Nothing was done. Use --force to issue a new certificate now." },
    ),
    namesDiffer: false,
  };
}
