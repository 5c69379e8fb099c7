import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { command, required, text, texts, type Values } from "../util/settings";
import { withPrivateTempDir } from "../util/temp-dir";
import { printable } from "../util/text";
import { fullchainThenKey } from "./pem-bundle";
import { hookEnv, RELOAD_TIMEOUT_MS } from "./reload";
import {
  checkSshClient,
  parseSshHost,
  type SshHost,
  type SshStep,
  scpArgv,
  sshAccessSettings,
  sshArgv,
  sshStep,
} from "./ssh-transport";
import { type DeployContext, DeployError, defineTarget, type Target } from "./target";

/**
 * ssh: copies the certificate files to one or more hosts with the system's OpenSSH (`scp`, `ssh`),
 * then runs a reload command there. This is how one issuing host serves a fleet.
 *
 * - `--ssh-target [USER@]HOST:DIR`, repeatable. DIR is absolute, or relative to the remote user's
 *   home, and must exist. HOST may be a Host alias from ~/.ssh/config (per-host ports, users and
 *   keys belong there); `--ssh-port`, `--ssh-identity` and `--ssh-option OPT` (each passed as
 *   `-o OPT`) apply to every target.
 * - In DIR: privkey.pem (0600), cert.pem, chain.pem, fullchain.pem (0644), and with
 *   `--ssh-combined NAME` also NAME (full chain then key, 0600) for HAProxy and the like.
 * - ssh and scp run as ssh-transport.ts says: batch mode (no password or passphrase prompts),
 *   `IdentitiesOnly=yes` with --ssh-identity, host keys in known_hosts checked as ssh does by
 *   default (an unknown or changed host key fails the deploy; nothing here turns
 *   StrictHostKeyChecking off, an operator who wants that must say so with --ssh-option).
 * - The local copies of the files are in a private temp dir, removed when the deploy ends or wile
 *   is interrupted.
 * - Per host: one `ssh` login checks that DIR exists and is writable (and the host key, before any
 *   upload), one `scp` uploads every file under a temp name (`.wile-<random>.<name>`) into DIR,
 *   then one `ssh` runs a POSIX sh script there that sets the modes and renames each temp file over
 *   its final name (atomic per file; a failure removes the temp files), then `--ssh-reload CMD`
 *   runs through another `ssh`, in DIR, with WILE_CERT_NAME, WILE_DOMAINS, WILE_*_PATH (the remote
 *   paths) exported. Hosts are done one after another; every host is tried, and any failure fails
 *   the deploy with the host and ssh's own message.
 * Locally everything runs as argv arrays, no shell; the remote side needs a POSIX sh.
 */
export interface SshTarget extends SshHost {
  /** As given. */
  spec: string;
  dir: string;
}

export const SCP_TIMEOUT_MS = 120_000;
export const SSH_TIMEOUT_MS = 60_000;

const DIR_RE = /^[A-Za-z0-9_./+=,@%-]+$/;
const FILE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+=,@%-]*$/;

/** Reads `[USER@]HOST:DIR` (HOST may be `[IPv6]`, see parseSshHost); throws Error with the reason. */
export function parseSshTarget(spec: string): SshTarget {
  // HOST ends at the first ":", or at the "]:" of a bracketed IPv6 address.
  const m = /^((?:[^[\]]*@)?\[[^\]]*\]|[^:]*):(.*)$/s.exec(spec);
  if (!m) throw new Error(`"${printable(spec, 100)}" is not [USER@]HOST:DIR`);
  const [, hostPart = "", dir = ""] = m;
  const host = parseSshHost(hostPart);
  if (dir === "")
    throw new Error(
      `no DIR after "${hostPart}:" (give the remote directory, e.g. ${hostPart}:/etc/ssl/wile)`,
    );
  if (!DIR_RE.test(dir) || dir.startsWith("-")) {
    throw new Error(
      `the remote directory "${printable(dir, 100)}" may only hold letters, digits and _ . / + = , @ % - (no spaces, no ~), and not start with -`,
    );
  }
  return { spec, ...host, dir };
}

const STANDARD_NAMES = ["privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"];

const settings = {
  targets: required(
    texts({
      flag: "ssh-target",
      arg: "[USER@]HOST:DIR",
      help: "ssh: copy privkey.pem, cert.pem, chain.pem, fullchain.pem into DIR on HOST (repeatable; DIR must exist)",
      check: (t) => {
        try {
          parseSshTarget(t);
          return undefined;
        } catch (err) {
          // The value itself is shown before the reason already.
          const why = (err as Error).message;
          const shown = `"${printable(t, 100)}" `;
          return why.startsWith(shown) ? why.slice(shown.length) : `is not usable: ${why}`;
        }
      },
    }),
  ),
  port: sshAccessSettings.port({
    flag: "ssh-port",
    arg: "PORT",
    help: "ssh: port for every --ssh-target (per-host ports: a Host entry in ~/.ssh/config)",
  }),
  identity: sshAccessSettings.identity({
    flag: "ssh-identity",
    help: "ssh: private key to log in with (ssh -i)",
  }),
  options: sshAccessSettings.options({
    flag: "ssh-option",
    help: "ssh: an ssh_config option passed as -o OPT (repeatable), e.g. UserKnownHostsFile=/etc/wile/known_hosts",
  }),
  /** File name of a combined PEM (full chain, then key) in DIR. */
  combined: text({
    arg: "NAME",
    help: "ssh: also write NAME in DIR: full chain then key in one file (HAProxy), 0600",
    check: (name) =>
      !FILE_NAME_RE.test(name) || name.startsWith(".wile-")
        ? "must be a plain file name (letters, digits, _ . + = , @ % -)"
        : STANDARD_NAMES.includes(name)
          ? "would overwrite the file of that name"
          : undefined,
  }),
  /** Run remotely (by the remote user's shell, through sh -c) after the files are in place. */
  reload: command({
    arg: "CMD",
    help: "ssh: run CMD on each host after the files are in place (in DIR, e.g. 'sudo systemctl reload nginx')",
  }),
};

export type SshConfig = Values<typeof settings>;

export const sshKind = defineTarget({
  kind: "ssh",
  summary:
    "OpenSSH: copy key, cert, chain, fullchain to [USER@]HOST:DIR on each host (batch mode, known_hosts checked), remote reload",
  example:
    "--deploy ssh --ssh-target deploy@web1.example:/etc/ssl/wile --ssh-reload 'sudo systemctl reload nginx'",
  settings,
  check(c, name) {
    if (c.targets.length === 0) throw new Error(`needs at least one ${name("targets")} [USER@]HOST:DIR`);
    const twice = c.targets.find((t, i) => c.targets.indexOf(t) !== i);
    if (twice) throw new Error(`${name("targets")} ${twice} is given twice`);
  },
  create: (config) => new SshDeployTarget(config),
});

/** Single-quoted for a POSIX shell. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

interface RemoteFile {
  name: string;
  content: string;
  mode: 0o600 | 0o644;
}

export function remoteFiles(ctx: DeployContext, combined?: string): RemoteFile[] {
  const f = ctx.files;
  // Key last: a reader that opens the files in between sees a new certificate with the old key for
  // at most the time of the renames; putting the key last keeps the old pair longest.
  return [
    { name: "cert.pem", content: f.certPem, mode: 0o644 },
    { name: "chain.pem", content: f.chainPem, mode: 0o644 },
    { name: "fullchain.pem", content: f.fullchainPem, mode: 0o644 },
    ...(combined ? [{ name: combined, content: fullchainThenKey(f), mode: 0o600 as const }] : []),
    { name: "privkey.pem", content: f.privkeyPem, mode: 0o600 },
  ];
}

/**
 * The sh script run in the remote DIR: set each temp file's mode, then rename it over the final
 * name; on any failure the temp files that are left are removed.
 */
export function installScript(
  dir: string,
  tag: string,
  files: Array<{ name: string; mode: number }>,
): string {
  const temp = (n: string) => shq(`.wile-${tag}.${n}`);
  const temps = files.map((f) => temp(f.name)).join(" ");
  return [
    "set -e",
    `cd -- ${shq(dir)}`,
    `trap 'rm -f -- ${temps.replace(/'/g, "")}' EXIT`,
    ...files.map((f) => `chmod ${f.mode.toString(8)} -- ${temp(f.name)}`),
    ...files.map((f) => `mv -f -- ${temp(f.name)} ${shq(f.name)}`),
  ].join("\n");
}

/** The sh script that checks DIR before anything is copied. */
export function checkDirScript(dir: string): string {
  const q = shq(dir);
  return `if [ ! -d ${q} ]; then echo "${dir.replace(/"/g, "")} does not exist (create it first)" >&2; exit 3; fi; if [ ! -w ${q} ]; then echo "${dir.replace(/"/g, "")} is not writable by $(id -un)" >&2; exit 3; fi`;
}

/** The sh script for --ssh-reload: in DIR, with the hook variables naming the remote files. */
export function reloadScript(dir: string, ctx: DeployContext, command: string): string {
  const env = hookEnv(ctx);
  const vars: Record<string, string> = {
    WILE_CERT_NAME: env.WILE_CERT_NAME as string,
    WILE_DOMAINS: env.WILE_DOMAINS as string,
  };
  const lines = ["set -e", `cd -- ${shq(dir)}`, "d=$(pwd)"];
  for (const [k, v] of Object.entries(vars)) lines.push(`${k}=${shq(v)}; export ${k}`);
  for (const [k, file] of [
    ["WILE_CERT_PATH", "cert.pem"],
    ["WILE_KEY_PATH", "privkey.pem"],
    ["WILE_CHAIN_PATH", "chain.pem"],
    ["WILE_FULLCHAIN_PATH", "fullchain.pem"],
  ] as const) {
    lines.push(`${k}="$d/${file}"; export ${k}`);
  }
  lines.push("set +e", command);
  return lines.join("\n");
}

export class SshDeployTarget implements Target {
  readonly kind = "ssh";
  readonly targets: SshTarget[];

  constructor(readonly config: SshConfig) {
    this.targets = config.targets.map(parseSshTarget);
  }

  describe(): string {
    const n = this.targets.length;
    const hosts =
      n <= 3
        ? this.config.targets.join(", ")
        : `${this.config.targets.slice(0, 3).join(", ")} and ${n - 3} more`;
    return `ssh (${hosts}${this.config.reload ? ", remote reload" : ""})`;
  }

  async check(_ctx: DeployContext): Promise<void> {
    await checkSshClient(this.config, "ssh", "--ssh-identity");
  }

  async deploy(ctx: DeployContext): Promise<void> {
    const files = remoteFiles(ctx, this.config.combined);
    const failures: string[] = [];
    await withPrivateTempDir("wile-ssh-", async (local) => {
      const tag = randomBytes(6).toString("hex");
      const paths: string[] = [];
      for (const f of files) {
        const p = join(local, `.wile-${tag}.${f.name}`);
        // The upload gives a new remote file this mode (narrowed by the remote umask), so a key is
        // never readable by others there either, not even before the chmod.
        await writeFile(p, f.content, { mode: f.mode, flag: "wx" });
        paths.push(p);
      }
      for (const t of this.targets) {
        try {
          await this.deployTo(ctx, t, tag, files, paths);
        } catch (err) {
          failures.push(err instanceof Error ? err.message : String(err));
        }
      }
    });
    if (failures.length > 0) {
      throw new DeployError(
        failures.length === 1
          ? (failures[0] as string)
          : `${failures.length} of ${this.targets.length} hosts failed: ${failures.join("; ")}`,
        {
          hint: "The certificate is stored; the hosts not named got it. Fix the host (ssh -o BatchMode=yes USER@HOST must log in without a prompt, its key in known_hosts), then run wile deploy NAME again.",
        },
      );
    }
  }

  /** A step running `script` with sh on t, in batch mode. */
  private sh(t: SshTarget, what: string, script: string, timeoutMs = SSH_TIMEOUT_MS): SshStep {
    return { what, argv: sshArgv(this.config, t, [`sh -c ${shq(script)}`]), timeoutMs };
  }

  private async deployTo(
    ctx: DeployContext,
    t: SshTarget,
    tag: string,
    files: RemoteFile[],
    localPaths: string[],
  ): Promise<void> {
    // First a login that changes nothing: it fails on an unknown host key or a refused login before
    // any upload, and checks that DIR exists (scp would create a missing one) and can be written.
    await sshStep(t.spec, this.sh(t, "logging in and checking the directory", checkDirScript(t.dir)));
    ctx.logger.info(`${ctx.name}: ssh: copying ${files.length} files to ${t.spec}`);
    const dest = t.dir.endsWith("/") ? t.dir : `${t.dir}/`;
    try {
      await sshStep(t.spec, {
        what: "copying the files (scp)",
        argv: scpArgv(this.config, localPaths, t, dest),
        timeoutMs: SCP_TIMEOUT_MS,
      });
    } catch (err) {
      // Best effort: do not leave a key under a temp name behind.
      const temps = files.map((f) => shq(`.wile-${tag}.${f.name}`)).join(" ");
      await sshStep(t.spec, this.sh(t, "cleaning up", `cd -- ${shq(t.dir)} && rm -f -- ${temps}`)).catch(
        () => {},
      );
      throw err;
    }
    await sshStep(t.spec, this.sh(t, "moving the files into place", installScript(t.dir, tag, files)));
    if (this.config.reload) {
      ctx.logger.info(`${ctx.name}: ssh: running ${this.config.reload} on ${t.spec}`);
      const script = reloadScript(t.dir, ctx, this.config.reload);
      await sshStep(
        t.spec,
        this.sh(t, `the reload command ${this.config.reload}`, script, RELOAD_TIMEOUT_MS),
      );
    }
    ctx.logger.info(`${ctx.name}: ssh: ${t.spec} done`);
  }
}
