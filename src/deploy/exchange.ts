/**
 * The exchange target: the certificate as a PKCS#12 file, pushed to one or more Microsoft Exchange
 * servers over OpenSSH (Windows' built-in sshd) and imported there with PowerShell.
 *
 * Per host: build a PFX (a fresh random password per host and run unless --pfx-password is given;
 * friendly name "wile NAME YYYY-MM-DD"), copy it with scp to the remote directory, then run
 * `ssh HOST powershell -NoProfile -NonInteractive -Command -` and send a script on its STDIN that
 * loads the Exchange snap-in when needed, imports the PFX (Import-ExchangeCertificate -FileData
 * -Password -PrivateKeyExportable $false; skipped when that thumbprint is already there, so a
 * re-run works), deletes the PFX file whatever happened, enables the certificate for the services
 * (Enable-ExchangeCertificate -Services ... -Force) and, with --exchange-remove-old, removes the
 * certificates wile installed earlier for this name (found by their friendly name "wile NAME ...",
 * so a certificate wile did not install is never touched; a failed removal is a warning). The
 * script ends with one line, `WILE-RESULT {json}` or `WILE-ERROR message`, which wile reads; the
 * thumbprint Exchange reports must equal SHA-1 of the new leaf.
 *
 * ssh and scp run as ssh-transport.ts says (batch mode, IdentitiesOnly=yes with an identity,
 * known_hosts checked). The local PFX is written into a private temp dir, removed when the deploy
 * ends or wile is interrupted.
 *
 * The password travels only inside the script on ssh's stdin: never in an argv, a log line or
 * --json. A given --pfx-password is stored in renewal.json (0600, in a 0700 directory) so that
 * renewals can replay it; a random one is never stored anywhere.
 */
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomPassword } from "../crypto/pkcs12";
import { flag, required, type Setting, text, texts, type Values, withDefault } from "../util/settings";
import { describeExit } from "../util/spawn";
import { withPrivateTempDir } from "../util/temp-dir";
import { printable } from "../util/text";
import { pfxFor, pfxLegacy, pfxPassword } from "./pfx";
import { parseScriptOutput, psQuote } from "./powershell";
import {
  checkSshClient,
  parseSshHost,
  runSshStep,
  type SshAccess,
  type SshStep,
  scpArgv,
  sshAccessSettings,
  sshArgv,
  sshHostProblem,
  sshStep,
  sshStepError,
} from "./ssh-transport";
import { type DeployContext, DeployError, defineTarget, type Target } from "./target";

export const EXCHANGE_SERVICES = ["IIS", "SMTP", "IMAP", "POP", "UM", "UMCallRouter", "Federation"] as const;
export const DEFAULT_SERVICES = ["IIS", "SMTP"];
export const DEFAULT_DIR = "C:/ProgramData/wile";
export const SCP_TIMEOUT_MS = 120_000;
/** Loading the Exchange snap-in alone can take half a minute. */
export const SCRIPT_TIMEOUT_MS = 300_000;

// ---------------------------------------------------------------------------------------------
// Settings

/** The ssh login settings (the -o options are `sshOptions` here). */
function accessOf(cfg: ExchangeConfig): SshAccess {
  return { port: cfg.port, identity: cfg.identity, options: cfg.sshOptions };
}

function checkDir(dir: string): string | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\x00-\x1f]/.test(dir)) return "must not contain control characters";
  if (!/^([A-Za-z]:)?[\\/]/.test(dir)) return "must be an absolute path such as C:\\ProgramData\\wile";
  return null;
}

/** Forward slashes, no trailing slash (Windows, scp and .NET all take C:/x/y). */
function normalizeDir(dir: string): string {
  const d = dir.replace(/\\/g, "/");
  return d.length > 1 && !/^[A-Za-z]:\/$/.test(d) ? d.replace(/\/+$/, "") : d;
}

/** `IIS,SMTP` on the command line, ["IIS", "SMTP"] in renewal.json; names as Exchange spells them. */
const servicesSetting: Setting<string[]> = {
  flag: "exchange-services",
  input: "value",
  arg: "LIST",
  help: `services to enable the certificate for, comma-separated from ${EXCHANGE_SERVICES.join(",")} (default IIS,SMTP)`,
  parse(v) {
    const names = typeof v === "string" ? v.split(",").map((x) => x.trim()) : v;
    if (!Array.isArray(names) || names.length === 0)
      throw new Error("must be a list of Exchange service names");
    const out: string[] = [];
    for (const raw of names) {
      const svc = EXCHANGE_SERVICES.find(
        (x) => typeof raw === "string" && x.toLowerCase() === raw.toLowerCase(),
      );
      if (!svc) {
        throw new Error(
          `must be Exchange service names: "${printable(String(raw), 50)}" is not one of ${EXCHANGE_SERVICES.join(", ")}`,
        );
      }
      if (!out.includes(svc)) out.push(svc);
    }
    return out;
  },
};

/** The remote directory: absolute (C:/x or /x), kept with forward slashes and no trailing slash. */
const dirSetting: Setting<string> = {
  flag: "exchange-dir",
  input: "value",
  arg: "DIR",
  help: `remote directory the PFX is copied to and deleted from after the import (default ${DEFAULT_DIR}; must exist)`,
  parse(v) {
    const why = typeof v === "string" ? checkDir(v) : "must be a string";
    if (why) throw new Error(why);
    return normalizeDir(v as string);
  },
};

const settings = {
  /** `user@host` or `host` (ssh's own config may fill in the user); see parseSshHost. */
  hosts: required(
    texts({
      flag: "exchange-host",
      arg: "USER@HOST",
      help: "Exchange server reached with OpenSSH (repeatable); Windows' sshd, key authentication, host key in known_hosts",
      check: sshHostProblem,
    }),
  ),
  port: sshAccessSettings.port({ flag: "exchange-port", arg: "N", help: "ssh port (default: ssh's, 22)" }),
  identity: sshAccessSettings.identity({ flag: "exchange-identity", help: "ssh private key (ssh -i)" }),
  sshOptions: sshAccessSettings.options({
    flag: "exchange-option",
    help: "extra ssh/scp option (ssh -o OPT), e.g. UserKnownHostsFile=/etc/wile/known_hosts (repeatable)",
  }),
  /** Exchange service names, e.g. ["IIS", "SMTP"]. */
  services: withDefault(servicesSetting, DEFAULT_SERVICES),
  removeOld: flag({
    flag: "exchange-remove-old",
    help: "remove the certificates wile installed earlier for this name (found by friendly name) after enabling the new one",
  }),
  /** Remote directory for the PFX while it is imported (forward slashes). */
  dir: withDefault(dirSetting, DEFAULT_DIR),
  /** The remote PowerShell program. */
  powershell: withDefault(
    text({
      flag: "exchange-powershell",
      arg: "PATH",
      help: "remote PowerShell program when powershell is not on the PATH of the ssh session (default powershell)",
      check: (p) =>
        /^[A-Za-z0-9_./:\\~+-]+$/.test(p) && !p.startsWith("-")
          ? undefined
          : "must be a program name or path without spaces or shell characters (use the 8.3 short name of a path with spaces, or put it on the PATH)",
    }),
    "powershell",
  ),
  pfxPassword,
  pfxLegacy,
};

export type ExchangeConfig = Values<typeof settings>;

// ---------------------------------------------------------------------------------------------
// The remote script

export interface ExchangeScriptSettings {
  /** Remote path of the copied PFX. */
  pfxPath: string;
  password: string;
  /** SHA-1 of the leaf DER, uppercase hex. */
  thumbprint: string;
  services: string[];
  /** With removeOld: certificates whose friendly name starts with this (other than the new one) go. */
  oldFriendlyNamePrefix: string;
  removeOld: boolean;
}

/**
 * The PowerShell text sent on stdin. `-Command -` reads stdin like an interactive prompt, so the
 * script is one try/catch statement followed by an empty line, which runs it.
 */
export function exchangeScript(s: ExchangeScriptSettings): string {
  return `${[
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "try {",
    `  $path = ${psQuote(s.pfxPath)}`,
    `  $thumbprint = ${psQuote(s.thumbprint)}`,
    `  $services = ${psQuote(s.services.join(","))}`,
    `  $oldPrefix = ${psQuote(s.oldFriendlyNamePrefix)}`,
    `  $removeOld = $${s.removeOld ? "true" : "false"}`,
    `  $password = ConvertTo-SecureString -String ${psQuote(s.password)} -AsPlainText -Force`,
    "  $imported = $false",
    "  try {",
    "    if (-not (Get-Command Import-ExchangeCertificate -ErrorAction SilentlyContinue)) {",
    "      Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn",
    "    }",
    "    if (-not (Get-ExchangeCertificate -Thumbprint $thumbprint -ErrorAction SilentlyContinue)) {",
    "      $null = Import-ExchangeCertificate -FileData ([System.IO.File]::ReadAllBytes($path)) -Password $password -PrivateKeyExportable $false",
    "      $imported = $true",
    "    }",
    "  } finally {",
    "    Remove-Item -LiteralPath $path -Force -ErrorAction SilentlyContinue",
    "  }",
    "  $cert = Get-ExchangeCertificate -Thumbprint $thumbprint",
    "  $null = Enable-ExchangeCertificate -Thumbprint $thumbprint -Services $services -Force",
    "  $removed = @()",
    "  $notRemoved = @()",
    "  if ($removeOld) {",
    "    foreach ($old in @(Get-ExchangeCertificate | Where-Object { $_.Thumbprint -ne $thumbprint -and $_.FriendlyName -and $_.FriendlyName.StartsWith($oldPrefix) })) {",
    "      try {",
    "        Remove-ExchangeCertificate -Thumbprint $old.Thumbprint -Confirm:$false",
    "        $removed += [string]$old.Thumbprint",
    "      } catch {",
    "        $notRemoved += [ordered]@{ thumbprint = [string]$old.Thumbprint; error = [string]$_.Exception.Message }",
    "      }",
    "    }",
    "  }",
    "  $result = [ordered]@{ thumbprint = [string]$cert.Thumbprint; imported = $imported; services = [string]$services; removed = $removed; notRemoved = $notRemoved }",
    "  Write-Output ('WILE-RESULT ' + (ConvertTo-Json -InputObject $result -Compress -Depth 4))",
    "} catch {",
    "  Write-Output ('WILE-ERROR ' + ([string]$_.Exception.Message -replace '\\s+', ' '))",
    "  exit 1",
    "}",
  ].join("\n")}\n\n`;
}

/** What a host's script reported, checked: the thumbprint and any old certificates removed or not. */
export interface ExchangeHostResult {
  thumbprint: string;
  imported: boolean;
  removed: string[];
  notRemoved: Array<{ thumbprint: string; error: string }>;
}

/**
 * Reads the script's output for `host`; a WILE-ERROR, a missing result, a failed exit or a
 * thumbprint other than `expected` is a DeployError naming the host.
 */
export function readHostResult(
  host: string,
  r: { code: number | null; stdout: string; stderr: string },
  expected: string,
  exit: string,
): ExchangeHostResult {
  const outcome = parseScriptOutput(r.stdout, r.stderr);
  if (outcome.kind === "error") {
    throw new DeployError(`${host}: ${printable(outcome.message, 500)}`, {
      hint: "The message comes from PowerShell on the Exchange server. The certificate is stored; after fixing, run wile deploy NAME.",
    });
  }
  if (outcome.kind === "none") {
    throw new DeployError(
      `${host}: the PowerShell script gave no result line (${exit})${outcome.output ? `: ${printable(outcome.output, 500)}` : ""}`,
      {
        hint: "Check that the ssh user may run PowerShell and the Exchange cmdlets (member of Organization Management), or set --exchange-powershell.",
      },
    );
  }
  const v = outcome.value;
  const thumbprint = typeof v.thumbprint === "string" ? v.thumbprint.toUpperCase() : "";
  if (thumbprint !== expected) {
    throw new DeployError(
      `${host}: Exchange reports certificate ${thumbprint || "(none)"}, but the new certificate's thumbprint is ${expected}`,
    );
  }
  if (r.code !== 0) throw new DeployError(`${host}: PowerShell ended with ${exit} after reporting success`);
  const strings = (x: unknown): string[] =>
    (Array.isArray(x) ? x : x === undefined || x === null ? [] : [x]).map((s) => String(s));
  const notRemoved = (Array.isArray(v.notRemoved) ? v.notRemoved : v.notRemoved ? [v.notRemoved] : []).map(
    (n: unknown) => {
      const o = (n && typeof n === "object" ? n : {}) as Record<string, unknown>;
      return { thumbprint: String(o.thumbprint ?? "?"), error: String(o.error ?? "?") };
    },
  );
  return { thumbprint, imported: v.imported !== false, removed: strings(v.removed), notRemoved };
}

// ---------------------------------------------------------------------------------------------
// The target

export function thumbprintOf(leafDer: Buffer): string {
  return createHash("sha1").update(leafDer).digest("hex").toUpperCase();
}

export function friendlyNameFor(name: string, notAfter: Date): string {
  return `wile ${name} ${notAfter.toISOString().slice(0, 10)}`;
}

/** The argv of each step for one host (for the target and for tests). */
export function hostCommands(cfg: ExchangeConfig, host: string, localPfx: string, remotePath: string) {
  const h = parseSshHost(host);
  return {
    scp: scpArgv(accessOf(cfg), [localPfx], h, remotePath),
    ssh: sshArgv(accessOf(cfg), h, [cfg.powershell, "-NoProfile", "-NonInteractive", "-Command", "-"]),
  };
}

export function remotePfxPath(cfg: Pick<ExchangeConfig, "dir">, name: string, thumbprint: string): string {
  const file = `wile-${name.replace(/[^A-Za-z0-9._-]/g, "_")}-${thumbprint.slice(0, 8)}.pfx`;
  return cfg.dir.endsWith("/") ? `${cfg.dir}${file}` : `${cfg.dir}/${file}`;
}

class ExchangeTarget implements Target {
  readonly kind = "exchange";
  constructor(private readonly cfg: ExchangeConfig) {}

  describe(): string {
    return `exchange (${this.cfg.hosts.join(", ")}: ${this.cfg.services.join(",")})`;
  }

  async check(ctx: DeployContext): Promise<void> {
    await checkSshClient(accessOf(this.cfg), "exchange", "--exchange-identity");
    // The key and certificate must make a PFX (this also checks that they belong together).
    this.pfx(ctx, randomPassword());
  }

  private pfx(ctx: DeployContext, password: string): Buffer {
    return pfxFor(ctx, {
      password,
      legacy: this.cfg.pfxLegacy,
      friendlyName: friendlyNameFor(ctx.name, ctx.notAfter),
      what: "the PKCS#12 file",
    });
  }

  async deploy(ctx: DeployContext): Promise<void> {
    const thumbprint = thumbprintOf(ctx.leafDer);
    const failures: DeployError[] = [];
    await withPrivateTempDir("wile-exchange-", async (local) => {
      for (const host of this.cfg.hosts) {
        try {
          await this.deployHost(ctx, host, thumbprint, local);
        } catch (err) {
          failures.push(
            err instanceof DeployError ? err : new DeployError(`${host}: ${(err as Error).message}`),
          );
        }
      }
    });
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) {
      throw new DeployError(
        `${failures.length} of ${this.cfg.hosts.length} Exchange hosts failed: ${failures.map((f) => f.message).join("; ")}`,
        { hint: failures[0]?.hint },
      );
    }
  }

  private async deployHost(
    ctx: DeployContext,
    host: string,
    thumbprint: string,
    localDir: string,
  ): Promise<void> {
    const password = this.cfg.pfxPassword ?? randomPassword();
    const localPfx = join(localDir, "certificate.pfx");
    await writeFile(localPfx, this.pfx(ctx, password), { mode: 0o600 });
    const remotePath = remotePfxPath(this.cfg, ctx.name, thumbprint);
    const cmds = hostCommands(this.cfg, host, localPfx, remotePath);

    ctx.logger.info(`${ctx.name}: copying the PKCS#12 file to ${host}:${remotePath}`);
    await sshStep(
      host,
      { what: `copying the PKCS#12 file to ${remotePath}`, argv: cmds.scp, timeoutMs: SCP_TIMEOUT_MS },
      `Check that ssh ${host} works in batch mode (key authentication, host key in known_hosts) and that the directory ${this.cfg.dir} exists there (--exchange-dir).`,
    );
    ctx.logger.info(`${ctx.name}: importing ${thumbprint} on ${host} for ${this.cfg.services.join(",")}`);
    const step: SshStep = {
      what: "running the PowerShell script",
      argv: cmds.ssh,
      timeoutMs: SCRIPT_TIMEOUT_MS,
      input: exchangeScript({
        pfxPath: remotePath,
        password,
        thumbprint,
        services: this.cfg.services,
        oldFriendlyNamePrefix: `wile ${ctx.name} `,
        removeOld: this.cfg.removeOld,
      }),
    };
    const r = await runSshStep(host, step);
    // A timeout, an interrupt, or ssh's own failure (255): the script may not have run to its end.
    if (r.timedOut || r.interrupted || r.code === 255) {
      throw sshStepError(
        host,
        step,
        r,
        `The PKCS#12 file may remain at ${remotePath} on ${host}; delete it there. Check that ssh ${host} works in batch mode.`,
      );
    }
    const result = readHostResult(host, r, thumbprint, describeExit(r));
    ctx.logger.info(
      `${ctx.name}: ${host}: ${result.imported ? "imported" : "already had"} ${thumbprint}, enabled for ${this.cfg.services.join(",")}${result.removed.length ? `; removed ${result.removed.join(", ")}` : ""}`,
    );
    for (const n of result.notRemoved) {
      ctx.logger.warn(
        `${ctx.name}: ${host}: could not remove the old certificate ${n.thumbprint}: ${printable(n.error, 300)}`,
      );
    }
  }
}

export const exchangeKind = defineTarget({
  kind: "exchange",
  summary:
    "Exchange: PKCS#12 copied with scp to each host, Import-/Enable-ExchangeCertificate over ssh with PowerShell",
  example: "--deploy exchange --exchange-host administrator@mail.example.com --exchange-services IIS,SMTP",
  settings,
  check(c, name) {
    if (c.hosts.length === 0) throw new Error(`needs at least one ${name("hosts")} USER@HOST`);
    const twice = c.hosts.find((h, i) => c.hosts.indexOf(h) !== i);
    if (twice) throw new Error(`${name("hosts")} ${twice} is given twice`);
  },
  create: (cfg) => new ExchangeTarget(cfg),
});
