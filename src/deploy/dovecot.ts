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
import { command, path, withDefault } from "../util/settings";
import { printable } from "../util/text";
import {
  certKeyOutputs,
  checkReload,
  configuredPath,
  failedMessage,
  reloadService,
  runTool,
  type Tool,
} from "./mail-common";
import { checkOutputs, type OutputFile, writeOutputs } from "./outputs";
import { type DeployContext, DeployError, defineTarget, type Target } from "./target";
import { describeEndpoint, verifyDeployed, verifyEndpoint, verifySetting } from "./verify";

export const DOVECOT_VERIFY_DEFAULTS = { port: 993, protocol: "tls" as const };
export const DEFAULT_DOVECOT_VERIFY = "127.0.0.1:993";

const DOVECONF: Tool = { name: "doveconf", service: "Dovecot", pkg: "dovecot-core" };
const DOVEADM: Tool = { name: "doveadm", service: "Dovecot", pkg: "dovecot-core" };

const settings = {
  /** A dovecot.conf other than the default: `doveconf -c`, `doveadm -c`. */
  config: path({
    arg: "FILE",
    help: "dovecot: a dovecot.conf other than the default (doveconf -c FILE, doveadm -c FILE reload)",
  }),
  /** Explicit paths (both or neither): the fullchain goes to cert, the key to key. */
  cert: path({
    arg: "PATH",
    help: "dovecot: write the fullchain here instead of where doveconf's ssl_cert says (with --dovecot-key)",
    needs: "key",
  }),
  key: path({
    arg: "PATH",
    help: "dovecot: write the key here instead of where doveconf's ssl_key says (with --dovecot-cert)",
    needs: "cert",
  }),
  /** Instead of `doveadm reload` (sh -c), e.g. "sudo doveadm reload". */
  reloadCmd: command({
    flag: "dovecot-reload",
    arg: "CMD",
    help: "dovecot: reload with this command (sh -c) instead of doveadm reload, e.g. 'sudo doveadm reload'",
  }),
  verify: withDefault(
    verifySetting({
      help: `dovecot: after the reload, check the certificate served there (default ${DEFAULT_DOVECOT_VERIFY}, IMAPS; :143:imap for STARTTLS; --no-dovecot-verify skips it)`,
      defaults: DOVECOT_VERIFY_DEFAULTS,
    }),
    DEFAULT_DOVECOT_VERIFY,
  ),
};

type DovecotConfig = { config?: string; cert?: string; key?: string };

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
export async function dovecotPaths(c: DovecotConfig, serverName: string): Promise<DovecotPaths> {
  if (c.cert !== undefined && c.key !== undefined) {
    return { cert: c.cert, key: c.key, certSetting: "--dovecot-cert", keySetting: "--dovecot-key" };
  }
  const base = c.config !== undefined ? ["-c", c.config] : [];
  const filter =
    /^[A-Za-z0-9.-]+$/.test(serverName) && /[A-Za-z]/.test(serverName) ? ["-f", `lname=${serverName}`] : [];
  const label = "dovecot";
  const query = async (setting: string, withFilter: boolean) =>
    runTool(DOVECONF, [...base, ...(withFilter ? filter : []), "-h", setting], label);

  // Dovecot 2.3 (Debian 12, Ubuntu 24.04): ssl_cert = </path.
  const v23 = await query("ssl_cert", true);
  if (!v23.failure && v23.stdout.trim() !== "") {
    const key = await query("ssl_key", true);
    if (key.failure) throw new DeployError(`${label}: ${failedMessage(key)}`);
    return {
      cert: fileValue(v23.stdout, "ssl_cert", label),
      key: fileValue(key.stdout, "ssl_key", label),
      certSetting: "ssl_cert",
      keySetting: "ssl_key",
    };
  }
  // Dovecot 2.4: ssl_server_cert_file = /path.
  const v24 = await query("ssl_server_cert_file", false);
  if (!v24.failure && v24.stdout.trim() !== "") {
    const key = await query("ssl_server_key_file", false);
    if (key.failure) throw new DeployError(`${label}: ${failedMessage(key)}`);
    return {
      cert: fileValue(v24.stdout, "ssl_server_cert_file", label),
      key: fileValue(key.stdout, "ssl_server_key_file", label),
      certSetting: "ssl_server_cert_file",
      keySetting: "ssl_server_key_file",
    };
  }
  const failed = v23.failure ? v23 : v24.failure ? v24 : undefined;
  if (failed) {
    throw new DeployError(`${label}: ${failedMessage(failed)}`, {
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
  return configuredPath(path, setting, `${label}: ${printable(setting, 40)}`);
}

function outputsFor(p: DovecotPaths): OutputFile[] {
  return certKeyOutputs(p.cert, p.key, "certificate");
}

export const dovecotKind = defineTarget({
  kind: "dovecot",
  summary:
    "Dovecot: key and fullchain where doveconf's ssl_cert/ssl_key say (or given), doveadm reload, verify IMAPS",
  example: "--deploy dovecot --dovecot-reload 'sudo doveadm reload'",
  settings,
  create(c): Target {
    const endpoint = verifyEndpoint(c.verify, DOVECOT_VERIFY_DEFAULTS);
    let resolved: DovecotPaths | undefined;
    const resolve = async (ctx: DeployContext) => {
      resolved ??= await dovecotPaths(c, ctx.serverName);
      return resolved;
    };
    return {
      kind: "dovecot",
      describe: () =>
        `dovecot (${resolved?.cert ?? c.cert ?? "paths from doveconf"}${endpoint ? `, verify ${describeEndpoint(endpoint)}` : ""})`,
      async check(ctx) {
        const p = await resolve(ctx);
        await checkOutputs("dovecot", outputsFor(p), undefined);
        await checkReload(DOVEADM, c.reloadCmd, "dovecot");
      },
      async deploy(ctx) {
        const p = await resolve(ctx);
        await writeOutputs(ctx, "dovecot", outputsFor(p), {});
        await reloadService(
          ctx,
          DOVEADM,
          [...(c.config !== undefined ? ["-c", c.config] : []), "reload"],
          c.reloadCmd,
          "dovecot",
          "doveadm reload needs root (or the rights to signal Dovecot's master): give --dovecot-reload 'sudo doveadm reload' with a sudoers rule for it.",
        );
        if (!endpoint) return;
        await verifyDeployed(ctx, "dovecot", endpoint, `does ${p.certSetting} point at ${p.cert}?`);
      },
    };
  },
});
