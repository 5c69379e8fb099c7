import { X509Certificate } from "node:crypto";
import { persistRecordName } from "../../challenges/dns-persist-01";
import { keyTypeOf } from "../../crypto/keys";
import { parseCertificate } from "../../crypto/x509";
import { daysLeft } from "../../renew/due";
import { certStatus, loadCertificate } from "../../renew/status";
import { CertStore } from "../../store/certs";
import { configPath, readConfig } from "../../store/config";
import { fileError } from "../../store/file-errors";
import type { RenewalConfig } from "../../store/renewal";
import { WileError } from "../../util/errors";
import type { Command } from "../command";
import { table } from "../output";

interface Row {
  name: string;
  domains: string[];
  issuer: string | null;
  notBefore: string;
  notAfter: string;
  daysLeft: number;
  keyType: string | null;
  path: string;
  /** ok, due, failing (the last renewal failed; see lastError), expired; or error (unreadable). */
  status: string;
  renewAt?: string;
  lastError?: string;
  /** The CA's explanation of its renewal window (ARI), as last seen by cron. */
  explanationURL?: string;
  error?: string;
  /** How to repair what `error` names. */
  hint?: string;
  /** How each name is proved at renewal: "http-01", "http-01:stateless", "dns-01:<provider>" or "dns-persist-01". */
  proofs?: Record<string, string>;
  /** Some name is proved by a persistent record _validation-persist.NAME (dns-persist-01). */
  persistent?: boolean;
}

/** How renewal.json proves each name. */
export function proofsOf(cfg: RenewalConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { value } of cfg.identifiers) {
    const dns = cfg.challenge.dns?.[value];
    out[value] = dns
      ? `dns-01:${dns.provider}`
      : cfg.challenge.persist?.includes(value)
        ? "dns-persist-01"
        : cfg.challenge.stateless?.includes(value)
          ? "http-01:stateless"
          : "http-01";
  }
  return out;
}

export const listCommand: Command = {
  name: "list",
  summary: "show every certificate wile manages",
  usage: "wile list [--json]",
  description: [
    "Reads each certificate the way wile cron does (renewal.json, its account, state.json, the",
    "current version), so a damaged file shows here before cron stops at it: it is named on stderr",
    "with how to repair it. Exit 0, or 1 when a certificate cannot be renewed as it is or",
    "config.json is broken.",
  ].join("\n"),
  options: [],
  examples: ["wile list", "wile list --json | jq '.certificates[] | select(.daysLeft < 20) | .name'"],
  async run({ out, home }) {
    const store = new CertStore(home);
    const rows: Row[] = [];
    const now = new Date();
    // What cron reads, read the same way (loadCertificate), so a damaged file shows here first.
    const warnings: string[] = [];
    const broken: { name: string; message: string; hint?: string }[] = [];
    const configError = await readConfig(home).then(
      () => null,
      (err: unknown) =>
        (err instanceof WileError ? err : fileError(err, configPath(home))) ?? Promise.reject(err),
    );
    for (const name of await store.names()) {
      const path = store.dir(name);
      try {
        const loaded = await loadCertificate(home, name);
        if (loaded.stateDamage)
          warnings.push(`${name}: ${loaded.stateDamage}; the next wile cron rewrites it`);
        if (loaded.certPem === null) {
          rows.push(blank(name, path, "no certificate stored yet"));
          continue;
        }
        const certPem = loaded.certPem;
        const info = parseCertificate(certPem, `${path}/cert.pem`);
        const state = loaded.state;
        const st = certStatus(info, loaded.cfg, state, now);
        const proofs = proofsOf(loaded.cfg);
        rows.push({
          name,
          domains: [...info.dnsNames, ...info.ipAddresses],
          issuer: info.issuerCN,
          notBefore: info.notBefore.toISOString(),
          notAfter: info.notAfter.toISOString(),
          daysLeft: daysLeft(info.notAfter),
          keyType: keyTypeOf(new X509Certificate(certPem).publicKey),
          path,
          status: st.status,
          renewAt: st.renewAt.toISOString(),
          ...(st.lastError ? { lastError: st.lastError } : {}),
          ...(state.ari?.explanationURL ? { explanationURL: state.ari.explanationURL } : {}),
          proofs,
          persistent: Object.values(proofs).includes("dns-persist-01"),
        });
      } catch (err) {
        const known = err instanceof WileError ? err : fileError(err);
        if (!known) throw err;
        rows.push({ ...blank(name, path, known.message), ...(known.hint ? { hint: known.hint } : {}) });
        broken.push({ name, message: known.message, ...(known.hint ? { hint: known.hint } : {}) });
      }
    }
    // Something cron would stop at, or run without (notifications): exit 1, so that scripts notice.
    const code = broken.length > 0 || configError ? 1 : 0;
    if (out.jsonMode) {
      out.json({
        certificates: rows,
        ...(warnings.length > 0 ? { warnings } : {}),
        ...(configError ? { configError: { message: configError.message, hint: configError.hint } } : {}),
      });
      return code;
    }
    if (configError)
      out.error(`${configError.message} (wile cron runs without notifications)`, configError.hint);
    for (const w of warnings) out.logger.warn(w);
    for (const b of broken) out.error(`${b.name}: ${b.message}`, b.hint);
    if (rows.length === 0) {
      out.logger.info(`No certificates in ${home}. Get one with: wile issue -d example.com -w /var/www/html`);
      return code;
    }
    out.print(
      table(
        ["NAME", "DOMAINS", "ISSUER", "NOT AFTER", "DAYS", "KEY", "STATUS", "PROOF", "PATH"],
        rows.map((r) => [
          r.name,
          r.domains.join(",") || "-",
          r.issuer ?? "-",
          r.hint
            ? "damaged (see below)"
            : r.error
              ? `error: ${r.error}`
              : r.notAfter.slice(0, 16).replace("T", " "),
          r.error ? "-" : String(r.daysLeft),
          r.keyType ?? "-",
          r.status,
          r.proofs ? [...new Set(Object.values(r.proofs))].join(",") : "-",
          r.path,
        ]),
      ),
    );
    const persistent = rows.filter((r) => r.persistent);
    if (persistent.length > 0) {
      const records = new Set(
        persistent.flatMap((r) =>
          Object.entries(r.proofs ?? {})
            .filter(([, p]) => p === "dns-persist-01")
            .map(([n]) => persistRecordName(n)),
        ),
      );
      out.logger.info(
        `${persistent.map((r) => r.name).join(", ")} renew through persistent DNS records (dns-persist-01): ${[...records].join(", ")}; renewal fails once a record is removed or this home's account is deactivated.`,
      );
    }
    for (const r of rows) {
      if (r.lastError) out.logger.warn(`${r.name}: the last renewal failed: ${r.lastError.split("\n")[0]}`);
    }
    return code;
  },
};

function blank(name: string, path: string, error: string): Row {
  return {
    name,
    domains: [],
    issuer: null,
    notBefore: "",
    notAfter: "",
    daysLeft: 0,
    keyType: null,
    path,
    status: "error",
    error,
  };
}
