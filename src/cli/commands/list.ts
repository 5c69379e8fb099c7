import { X509Certificate } from "node:crypto";
import { keyTypeOf } from "../../crypto/keys";
import { parseCertificate } from "../../crypto/x509";
import { daysLeft } from "../../renew/due";
import { certStatus } from "../../renew/status";
import { CertStore } from "../../store/certs";
import { readState } from "../../store/state";
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
}

export const listCommand: Command = {
  name: "list",
  summary: "show every certificate wile manages",
  usage: "wile list [--json]",
  options: [],
  examples: ["wile list", "wile list --json | jq '.certificates[] | select(.daysLeft < 20) | .name'"],
  async run({ out, home }) {
    const store = new CertStore(home);
    const rows: Row[] = [];
    const now = new Date();
    for (const name of await store.names()) {
      const path = store.dir(name);
      const files = await store.readCurrent(name);
      if (!files) {
        rows.push(blank(name, path, "no certificate stored yet"));
        continue;
      }
      try {
        const info = parseCertificate(files.certPem, `${path}/cert.pem`);
        const cfg = await store.readRenewal(name).catch(() => null);
        const state = await readState(home, name);
        const st = certStatus(info, cfg, state, now);
        rows.push({
          name,
          domains: [...info.dnsNames, ...info.ipAddresses],
          issuer: info.issuerCN,
          notBefore: info.notBefore.toISOString(),
          notAfter: info.notAfter.toISOString(),
          daysLeft: daysLeft(info.notAfter),
          keyType: keyTypeOf(new X509Certificate(files.certPem).publicKey),
          path,
          status: st.status,
          renewAt: st.renewAt.toISOString(),
          ...(st.lastError ? { lastError: st.lastError } : {}),
          ...(state.ari?.explanationURL ? { explanationURL: state.ari.explanationURL } : {}),
        });
      } catch (err) {
        rows.push(blank(name, path, (err as Error).message));
      }
    }
    if (out.jsonMode) {
      out.json({ certificates: rows });
      return 0;
    }
    if (rows.length === 0) {
      out.logger.info(`No certificates in ${home}. Get one with: wile issue -d example.com -w /var/www/html`);
      return 0;
    }
    out.print(
      table(
        ["NAME", "DOMAINS", "ISSUER", "NOT AFTER", "DAYS", "KEY", "STATUS", "PATH"],
        rows.map((r) => [
          r.name,
          r.domains.join(",") || "-",
          r.issuer ?? "-",
          r.error ? `error: ${r.error}` : r.notAfter.slice(0, 16).replace("T", " "),
          r.error ? "-" : String(r.daysLeft),
          r.keyType ?? "-",
          r.status,
          r.path,
        ]),
      ),
    );
    for (const r of rows) {
      if (r.lastError) out.logger.warn(`${r.name}: the last renewal failed: ${r.lastError.split("\n")[0]}`);
    }
    return 0;
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
