/**
 * The "dovecot" target: the key and the fullchain go where Dovecot reads them, then `doveadm reload`,
 * then a check that Dovecot serves the new certificate (IMAPS on 127.0.0.1:993 unless told otherwise).
 *
 * Where: asked from Dovecot itself on every deploy, so a changed configuration is followed:
 * - Dovecot 2.3: `doveconf -h ssl_cert` / `ssl_key`, values "<path" (a value without "<" is the PEM
 *   itself, which wile cannot update: give paths then). The query carries `-f lname=<name>` so a
 *   `local_name <name> { ssl_cert = ... }` block for the certificate's first name wins over the
 *   global setting, as it does for clients sending that name as SNI.
 * - Dovecot 2.4: `ssl_server_cert_file` / `ssl_server_key_file` (plain paths), asked when 2.3's
 *   names give nothing.
 * - `--dovecot-config FILE` queries (and reloads) a non-default instance: `doveconf -c FILE`,
 *   `doveadm -c FILE reload`.
 * - `--dovecot-cert PATH --dovecot-key PATH` name the files instead (no doveconf needed).
 * Both settings naming one file gets key then fullchain in it. The files are replaced atomically;
 * an existing file keeps its owner and mode (Dovecot reads them as root, so root:root 0600 is fine).
 */
import type { Values } from "../util/settings";
import { printable } from "../util/text";
import * as mail from "./mail-common";
import { DeployError, defineTarget } from "./target";

export const DOVECOT_VERIFY_DEFAULTS = { port: 993, protocol: "tls" as const };
export const DEFAULT_DOVECOT_VERIFY = "127.0.0.1:993";

const DOVECONF: mail.Tool = { name: "doveconf", service: "Dovecot", pkg: "dovecot-core" };
const DOVEADM: mail.Tool = { name: "doveadm", service: "Dovecot", pkg: "dovecot-core" };

const settings = mail.settings({
  kind: "dovecot",
  configArg: "FILE",
  help: {
    config: "dovecot: a dovecot.conf other than the default (doveconf -c FILE, doveadm -c FILE reload)",
    cert: "dovecot: write the fullchain here instead of where doveconf's ssl_cert says (with --dovecot-key)",
    key: "dovecot: write the key here instead of where doveconf's ssl_key says (with --dovecot-cert)",
    reload: "dovecot: reload with this command (sh -c) instead of doveadm reload, e.g. 'sudo doveadm reload'",
    verify: `dovecot: after the reload, check the certificate served there (default ${DEFAULT_DOVECOT_VERIFY}, IMAPS; :143:imap for STARTTLS; --no-dovecot-verify skips it)`,
  },
  verify: { fallback: DEFAULT_DOVECOT_VERIFY, defaults: DOVECOT_VERIFY_DEFAULTS },
});

export type DovecotConfig = Values<typeof settings>;

/** Where Dovecot reads its certificate and key, and the setting that says so (for hints). */
export interface DovecotPaths {
  cert: string;
  key: string;
  /** "ssl_cert" (2.3), "ssl_server_cert_file" (2.4), or "--dovecot-cert". */
  certSetting: string;
  keySetting: string;
}

/**
 * Asks doveconf where the certificate and key are (2.3 names, then 2.4 names). `serverName` picks a
 * `local_name` block (2.3) when it is a DNS name.
 */
export async function dovecotPaths(
  c: Pick<DovecotConfig, "config" | "cert" | "key">,
  serverName: string,
): Promise<DovecotPaths> {
  if (c.cert !== undefined && c.key !== undefined) {
    return { cert: c.cert, key: c.key, certSetting: "--dovecot-cert", keySetting: "--dovecot-key" };
  }
  const base = c.config !== undefined ? ["-c", c.config] : [];
  const filter =
    /^[A-Za-z0-9.-]+$/.test(serverName) && /[A-Za-z]/.test(serverName) ? ["-f", `lname=${serverName}`] : [];
  const label = "dovecot";
  const query = async (setting: string, withFilter: boolean) =>
    mail.runTool(DOVECONF, [...base, ...(withFilter ? filter : []), "-h", setting], label);

  // Dovecot 2.3 (Debian 12, Ubuntu 24.04): ssl_cert = </path, per local_name; 2.4: plain paths.
  const names = [
    { cert: "ssl_cert", key: "ssl_key", withFilter: true },
    { cert: "ssl_server_cert_file", key: "ssl_server_key_file", withFilter: false },
  ];
  let failed: Awaited<ReturnType<typeof query>> | undefined;
  for (const n of names) {
    const cert = await query(n.cert, n.withFilter);
    if (cert.failure) failed ??= cert;
    if (cert.failure || cert.stdout.trim() === "") continue;
    const key = await query(n.key, n.withFilter);
    if (key.failure) throw new DeployError(`${label}: ${mail.failedMessage(key)}`);
    return {
      cert: fileValue(cert.stdout, n.cert, label),
      key: fileValue(key.stdout, n.key, label),
      certSetting: n.cert,
      keySetting: n.key,
    };
  }
  if (failed) {
    throw new DeployError(`${label}: ${mail.failedMessage(failed)}`, {
      hint:
        c.config !== undefined
          ? `Is ${c.config} a Dovecot configuration wile can read? Or give --dovecot-cert and --dovecot-key.`
          : "doveconf must be able to read Dovecot's configuration (--dovecot-config FILE for another instance), or give --dovecot-cert and --dovecot-key.",
    });
  }
  throw new DeployError(
    `${label}: doveconf reports no certificate file (ssl_cert and ssl_server_cert_file are empty)`,
    {
      hint: "Configure ssl_cert = </etc/dovecot/private/mail.pem and ssl_key = </etc/dovecot/private/mail.key in Dovecot, or give --dovecot-cert and --dovecot-key.",
    },
  );
}

/** `</etc/dovecot/private/x.pem` -> the path; a PEM given inline cannot be updated by wile. */
function fileValue(stdout: string, setting: string, label: string): string {
  const value = stdout.replace(/\r?\n$/, "").trim();
  if (value === "") throw new DeployError(`${label}: doveconf reports no ${setting}`);
  if (value.includes("-----BEGIN") || value.includes("\n")) {
    throw new DeployError(
      `${label}: ${setting} holds the PEM text itself, not a file name, so wile cannot update it`,
      {
        hint: `Write it as ${setting} = </path/to/file in Dovecot's configuration, or give --dovecot-cert and --dovecot-key.`,
      },
    );
  }
  const path = value.startsWith("<") ? value.slice(1).trim() : value;
  return mail.configuredPath(path, setting, `${label}: ${printable(setting, 40)}`);
}

export const dovecotKind = defineTarget({
  kind: "dovecot",
  summary:
    "Dovecot: key and fullchain where doveconf's ssl_cert/ssl_key say (or given), doveadm reload, verify IMAPS",
  example: "--deploy dovecot --dovecot-reload 'sudo doveadm reload'",
  settings,
  create: (c) =>
    mail.target({
      kind: "dovecot",
      c,
      defaults: DOVECOT_VERIFY_DEFAULTS,
      reloadTool: DOVEADM,
      nonRootHint:
        "doveadm reload needs root (or the rights to signal Dovecot's master): give --dovecot-reload 'sudo doveadm reload' with a sudoers rule for it.",
      unplanned: c.cert ?? "paths from doveconf",
      async plan(ctx) {
        const p = await dovecotPaths(c, ctx.serverName);
        return {
          setting: p.certSetting,
          certPath: p.cert,
          outputs: mail.certKeyOutputs(p.cert, p.key, "certificate"),
        };
      },
    }),
});
