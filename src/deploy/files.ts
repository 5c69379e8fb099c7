/**
 * The "files" target (acme.sh's --install-cert): copies the certificate, key, chain, fullchain, a
 * combined key+fullchain PEM and optionally a PKCS#12 file to paths the operator names, each written
 * atomically in its own directory, then runs --reload-cmd and, with --verify, checks what the
 * service serves. The helpers below (paths, owner, mode, reload program) are shared with the other
 * file-copying targets (nginx, apache).
 */
import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import type { OptionSpec, ParsedOptions } from "../cli/options";
import { str } from "../cli/options";
import { splitPemChain } from "../crypto/pem";
import { buildPfx, randomPassword } from "../crypto/pkcs12";
import { UsageError, WileError } from "../util/errors";
import { run } from "../util/spawn";
import { checkWritable, installFile, type Owner } from "./install-file";
import { PFX_OPTIONS } from "./pfx-options";
import { runHook } from "./reload";
import { type DeployContext, DeployError, type Target, type TargetKind } from "./target";
import { describeEndpoint, type Endpoint, formatEndpoint, parseEndpoint, verifyDeployed } from "./verify";

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** One file a target writes: where, what for messages, its content, and whether it holds the key. */
export interface OutputFile {
  path: string;
  /** "key file", "fullchain file": for messages. */
  what: string;
  secret: boolean;
  content(ctx: DeployContext): string | Uint8Array;
}

/** A path option's value made absolute (against the current directory) at the command line. */
export function absolutePath(value: string, option: string): string {
  if (value.includes("\0")) throw new UsageError(`--${option}: the path contains a NUL byte`);
  return resolve(value);
}

/** `USER`, `USER:GROUP`, `:GROUP` (names or numeric ids). UsageError when malformed. */
export function parseOwnerSpec(spec: string, option = "owner"): { user?: string; group?: string } {
  const m = /^([A-Za-z0-9_.][A-Za-z0-9_.-]*\$?)?(?::([A-Za-z0-9_.][A-Za-z0-9_.-]*\$?))?$/.exec(spec);
  if (!m || (!m[1] && !m[2])) {
    throw new UsageError(`--${option} ${JSON.stringify(spec)}: expected USER, USER:GROUP or :GROUP`, {
      hint: `For example --${option} root:ssl-cert or --${option} :mail.`,
    });
  }
  return { user: m[1], group: m[2] };
}

/** Reads a passwd/group style file: name -> id (third field). */
async function idTable(file: string): Promise<Map<string, number>> {
  const text = await readFile(file, "utf8").catch(() => "");
  const map = new Map<string, number>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[0] && /^\d+$/.test(f[2] ?? "")) map.set(f[0], Number(f[2]));
  }
  return map;
}

async function lookupId(name: string, db: "passwd" | "group"): Promise<number | undefined> {
  if (/^\d+$/.test(name)) return Number(name);
  const local = (await idTable(`/etc/${db}`)).get(name);
  if (local !== undefined) return local;
  // Users from LDAP, sssd and the like: ask NSS through getent when it is there.
  try {
    const r = await run(["getent", db, name], { timeoutMs: 5000 });
    const f = r.stdout.split("\n")[0]?.split(":") ?? [];
    if (r.code === 0 && /^\d+$/.test(f[2] ?? "")) return Number(f[2]);
  } catch {
    // no getent
  }
  return undefined;
}

/** The uid/gid of an owner spec; DeployError naming the unknown user or group. */
export async function resolveOwner(spec: string): Promise<Owner> {
  const { user, group } = parseOwnerSpec(spec);
  const owner: Owner = {};
  if (user) {
    owner.uid = await lookupId(user, "passwd");
    if (owner.uid === undefined)
      throw new DeployError(`owner ${spec}: there is no user ${user} on this host`);
  }
  if (group) {
    owner.gid = await lookupId(group, "group");
    if (owner.gid === undefined)
      throw new DeployError(`owner ${spec}: there is no group ${group} on this host`);
  }
  return owner;
}

/** `0640`, `640`, `0o640` -> 0o640. UsageError otherwise. */
export function parseMode(value: string, option = "mode"): number {
  const m = /^(?:0o?)?([0-7]{3,4})$/.exec(value);
  if (!m) {
    throw new UsageError(`--${option} ${JSON.stringify(value)}: expected an octal mode such as 0600 or 0640`);
  }
  return Number.parseInt(m[1] as string, 8);
}

/** `0640`: for renewal.json and messages. */
export function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

const SHELL_WORDS = new Set([
  "true",
  "false",
  ":",
  ".",
  "[",
  "test",
  "echo",
  "printf",
  "exec",
  "command",
  "eval",
  "set",
  "export",
  "cd",
  "if",
  "for",
  "while",
  "case",
  "until",
  "!",
  "{",
  "(",
  "exit",
  "return",
  "wait",
  "umask",
  "ulimit",
  "trap",
  "unset",
  "kill",
  "sleep",
]);

/**
 * For a command the operator wrote: when it starts with a plain program name (or path), that
 * program must exist (in PATH, or at that path). Shell syntax and builtins are not second-guessed.
 */
export async function checkCommandProgram(command: string, what: string): Promise<void> {
  const first = command.trim().split(/\s+/)[0] ?? "";
  if (first === "" || SHELL_WORDS.has(first) || !/^[A-Za-z0-9_./+-]+$/.test(first)) return;
  const executable = (p: string) =>
    access(p, constants.X_OK).then(
      () => true,
      () => false,
    );
  if (first.includes("/")) {
    if (!(await executable(first))) {
      throw new DeployError(`${what}: ${first} does not exist or is not executable (in: ${command})`);
    }
    return;
  }
  const path = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  for (const dir of path) if (await executable(join(dir, first))) return;
  for (const dir of ["/usr/local/sbin", "/usr/sbin", "/sbin"]) {
    if (!path.includes(dir) && (await executable(join(dir, first)))) {
      throw new DeployError(`${what}: ${first} is not in PATH (it is at ${join(dir, first)})`, {
        hint: `Write the full path in the command (${join(dir, first)} ...), or add ${dir} to PATH where wile runs (cron's PATH is short).`,
      });
    }
  }
  throw new DeployError(`${what}: the program ${first} was not found in PATH (in: ${command})`, {
    hint: "Install it, or write the command with the program's full path.",
  });
}

/** Every output path can be written, and the owner exists: nothing is changed. */
export async function checkOutputs(
  label: string,
  outputs: OutputFile[],
  owner: string | undefined,
): Promise<void> {
  for (const o of outputs) await checkWritable(o.path, `${label} ${o.what}`);
  if (owner !== undefined) await resolveOwner(owner);
}

/** Writes each output atomically; `mode` applies to the files holding the key. */
export async function writeOutputs(
  ctx: DeployContext,
  label: string,
  outputs: OutputFile[],
  settings: { owner?: string; mode?: number },
): Promise<void> {
  const owner = settings.owner !== undefined ? await resolveOwner(settings.owner) : undefined;
  for (const o of outputs) {
    await installFile(o.path, o.content(ctx), {
      secret: o.secret,
      owner,
      mode: o.secret ? settings.mode : undefined,
    });
    ctx.logger.debug(`${ctx.name}: ${label}: wrote ${o.path}`);
  }
}

/** Key + fullchain in one PEM (HAProxy, some appliances). */
export function combinedPem(ctx: DeployContext): string {
  const key = ctx.files.privkeyPem.endsWith("\n") ? ctx.files.privkeyPem : `${ctx.files.privkeyPem}\n`;
  return key + ctx.files.fullchainPem;
}

// Reading settings back from renewal.json.

export function optionalString(
  raw: Record<string, unknown>,
  field: string,
  where: string,
): string | undefined {
  const v = raw[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") throw new WileError(`${where}.${field}: must be a non-empty string`);
  return v;
}

export function optionalPath(raw: Record<string, unknown>, field: string, where: string): string | undefined {
  const v = optionalString(raw, field, where);
  if (v !== undefined && !isAbsolute(v)) throw new WileError(`${where}.${field}: must be an absolute path`);
  return v;
}

export function optionalEndpoint(
  raw: Record<string, unknown>,
  field: string,
  where: string,
  defaults: { port: number; protocol: Endpoint["protocol"] },
): string | undefined {
  const v = optionalString(raw, field, where);
  if (v === undefined) return undefined;
  try {
    return formatEndpoint(parseEndpoint(v, defaults));
  } catch (err) {
    throw new WileError(`${where}.${field}: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The files target

export interface FilesConfig {
  kind: "files";
  certFile?: string;
  keyFile?: string;
  /** The chain (issuer certificates), as acme.sh's --ca-file. */
  caFile?: string;
  fullchainFile?: string;
  /** Key followed by the fullchain. */
  combinedFile?: string;
  /**
   * A PKCS#12 file (key, leaf, chain) for IIS and other Windows services, with a fresh random
   * password written next to it as <pfxFile>.pass (secret mode, same owner): no password is kept
   * in renewal.json.
   */
  pfxFile?: string;
  /** Given with --pfx-password (stored, so renewals use it too); else a random one goes to PATH.pass. */
  pfxPassword?: string;
  /** 3DES and SHA-1 MAC for Windows Server 2016 and older. */
  pfxLegacy?: boolean;
  /** `user`, `user:group` or `:group`. */
  owner?: string;
  /** Octal, for the key files: "0640". */
  mode?: string;
  reloadCmd?: string;
  /** host:port:protocol */
  verify?: string;
}

const FILE_FIELDS = [
  ["certFile", "cert-file", "certificate file"],
  ["keyFile", "key-file", "key file"],
  ["caFile", "ca-file", "chain file"],
  ["fullchainFile", "fullchain-file", "fullchain file"],
  ["combinedFile", "combined-file", "combined file"],
  ["pfxFile", "pfx-file", "PKCS#12 file"],
] as const;

const VERIFY_DEFAULTS = { port: 443, protocol: "tls" as const };

export const FILES_OPTIONS: OptionSpec[] = [
  { name: "cert-file", type: "string", arg: "PATH", help: "files: the certificate (leaf only)" },
  { name: "key-file", type: "string", arg: "PATH", help: "files: the private key" },
  { name: "ca-file", type: "string", arg: "PATH", help: "files: the chain (issuer certificates)" },
  { name: "fullchain-file", type: "string", arg: "PATH", help: "files: certificate and chain" },
  {
    name: "combined-file",
    type: "string",
    arg: "PATH",
    help: "files: key followed by certificate and chain, one PEM (HAProxy and others)",
  },
  {
    name: "pfx-file",
    type: "string",
    arg: "PATH",
    help: "files: PKCS#12 with key, certificate and chain (IIS, Windows services; AES-256, SHA-256 MAC); without --pfx-password a random password goes to PATH.pass",
  },
  ...PFX_OPTIONS,
  {
    name: "owner",
    type: "string",
    arg: "USER[:GROUP]",
    help: "files: chown the files written (needs root, or membership for a group)",
  },
  {
    name: "mode",
    type: "string",
    arg: "OCTAL",
    help: "files: mode of the key files (default 0600, 0640 with a group; an existing file keeps its mode)",
  },
  { name: "reload-cmd", type: "string", arg: "CMD", help: "files: run after copying (sh -c, 60 s timeout)" },
  {
    name: "verify",
    type: "string",
    arg: "HOST[:PORT[:PROTO]]",
    help: "files: afterwards, check that this endpoint serves the new certificate (port 443; PROTO tls, smtp, imap, pop3)",
  },
];

function filesOutputs(c: FilesConfig): OutputFile[] {
  const out: OutputFile[] = [];
  if (c.certFile)
    out.push({ path: c.certFile, what: "certificate file", secret: false, content: (x) => x.files.certPem });
  if (c.caFile)
    out.push({ path: c.caFile, what: "chain file", secret: false, content: (x) => x.files.chainPem });
  if (c.fullchainFile) {
    out.push({
      path: c.fullchainFile,
      what: "fullchain file",
      secret: false,
      content: (x) => x.files.fullchainPem,
    });
  }
  if (c.keyFile)
    out.push({ path: c.keyFile, what: "key file", secret: true, content: (x) => x.files.privkeyPem });
  if (c.combinedFile)
    out.push({ path: c.combinedFile, what: "combined file", secret: true, content: combinedPem });
  return out;
}

/** The PKCS#12 file and, without a given password, its password file; built once per deploy. */
function pfxOutputs(c: FilesConfig, ctx: DeployContext): OutputFile[] {
  if (!c.pfxFile) return [];
  const password = c.pfxPassword ?? randomPassword();
  let pfx: Buffer;
  try {
    pfx = buildPfx({
      keyPem: ctx.files.privkeyPem,
      certPem: ctx.files.certPem,
      chainPems: splitPemChain(ctx.files.chainPem),
      password,
      ...(c.pfxLegacy ? { legacy: true } : {}),
      friendlyName: `${ctx.name} ${ctx.notAfter.toISOString().slice(0, 10)}`,
    });
  } catch (err) {
    throw new DeployError(`cannot build the PKCS#12 file ${c.pfxFile}: ${(err as Error).message}`);
  }
  const pfxFile: OutputFile = { path: c.pfxFile, what: "PKCS#12 file", secret: true, content: () => pfx };
  if (c.pfxPassword !== undefined) return [pfxFile];
  return [
    pfxFile,
    {
      path: `${c.pfxFile}.pass`,
      what: "PKCS#12 password file",
      secret: true,
      content: () => `${password}\n`,
    },
  ];
}

function pfxPlaceholders(c: FilesConfig): OutputFile[] {
  if (!c.pfxFile) return [];
  const pfxFile: OutputFile = { path: c.pfxFile, what: "PKCS#12 file", secret: true, content: () => "" };
  if (c.pfxPassword !== undefined) return [pfxFile];
  return [
    pfxFile,
    { path: `${c.pfxFile}.pass`, what: "PKCS#12 password file", secret: true, content: () => "" },
  ];
}

function filesFromOptions(opts: ParsedOptions): FilesConfig {
  const c: FilesConfig = { kind: "files" };
  for (const [field, option] of FILE_FIELDS) {
    const v = str(opts, option);
    if (v !== undefined) c[field] = absolutePath(v, option);
  }
  if (!FILE_FIELDS.some(([field]) => c[field] !== undefined)) {
    throw new UsageError("--deploy files needs at least one path", {
      hint: "For example --key-file /etc/ssl/private/site.key --fullchain-file /etc/ssl/certs/site.pem",
    });
  }
  const paths = FILE_FIELDS.map(([field]) => c[field]).filter((p): p is string => p !== undefined);
  const twice = paths.find((p, i) => paths.indexOf(p) !== i);
  if (twice) throw new UsageError(`--deploy files: ${twice} is given for two different files`);
  const owner = str(opts, "owner");
  if (owner !== undefined) {
    parseOwnerSpec(owner);
    c.owner = owner;
  }
  const mode = str(opts, "mode");
  if (mode !== undefined) c.mode = formatMode(parseMode(mode));
  const reload = str(opts, "reload-cmd");
  if (reload !== undefined) c.reloadCmd = reload;
  const verify = str(opts, "verify");
  if (verify !== undefined) c.verify = formatEndpoint(parseEndpoint(verify, VERIFY_DEFAULTS));
  const pfxPassword = str(opts, "pfx-password");
  const pfxLegacy = opts["pfx-legacy"] === true;
  // The two are shared with the exchange target; without --pfx-file they can only be meant for it.
  if ((pfxPassword !== undefined || pfxLegacy) && !c.pfxFile && !listHas(opts.deploy, "exchange")) {
    throw new UsageError("--pfx-password and --pfx-legacy go with --pfx-file (or --deploy exchange)");
  }
  if (c.pfxFile && pfxPassword !== undefined) c.pfxPassword = pfxPassword;
  if (c.pfxFile && pfxLegacy) c.pfxLegacy = true;
  return c;
}

function listHas(v: unknown, item: string): boolean {
  return Array.isArray(v) ? v.includes(item) : v === item;
}

function filesParse(raw: Record<string, unknown>, where: string): FilesConfig {
  const c: FilesConfig = { kind: "files" };
  for (const [field] of FILE_FIELDS) {
    const v = optionalPath(raw, field, where);
    if (v !== undefined) c[field] = v;
  }
  if (!FILE_FIELDS.some(([field]) => c[field] !== undefined)) {
    throw new WileError(
      `${where}: a files target needs at least one of ${FILE_FIELDS.map((f) => f[0]).join(", ")}`,
    );
  }
  const owner = optionalString(raw, "owner", where);
  if (owner !== undefined) {
    try {
      parseOwnerSpec(owner);
    } catch (err) {
      throw new WileError(`${where}.owner: ${(err as Error).message}`);
    }
    c.owner = owner;
  }
  const mode = optionalString(raw, "mode", where);
  if (mode !== undefined) {
    try {
      c.mode = formatMode(parseMode(mode));
    } catch (err) {
      throw new WileError(`${where}.mode: ${(err as Error).message}`);
    }
  }
  const reload = optionalString(raw, "reloadCmd", where);
  if (reload !== undefined) c.reloadCmd = reload;
  const pfxPassword = optionalString(raw, "pfxPassword", where);
  if (pfxPassword !== undefined) c.pfxPassword = pfxPassword;
  if (raw.pfxLegacy === true) c.pfxLegacy = true;
  const verify = optionalEndpoint(raw, "verify", where, VERIFY_DEFAULTS);
  if (verify !== undefined) c.verify = verify;
  return c;
}

function filesTarget(c: FilesConfig): Target {
  const outputs = filesOutputs(c);
  const endpoint = c.verify ? parseEndpoint(c.verify, VERIFY_DEFAULTS) : undefined;
  const mode = c.mode !== undefined ? parseMode(c.mode) : undefined;
  const all = () => [...outputs, ...pfxPlaceholders(c)];
  return {
    kind: "files",
    describe: () => {
      const paths = all().map((o) => o.path);
      const shown =
        paths.length > 2 ? `${paths.slice(0, 2).join(", ")} and ${paths.length - 2} more` : paths.join(", ");
      return `files (${shown}${endpoint ? `, verify ${describeEndpoint(endpoint)}` : ""})`;
    },
    async check() {
      await checkOutputs("files:", all(), c.owner);
      if (c.reloadCmd) await checkCommandProgram(c.reloadCmd, "files: --reload-cmd");
    },
    async deploy(ctx) {
      await writeOutputs(ctx, "files", [...outputs, ...pfxOutputs(c, ctx)], { owner: c.owner, mode });
      if (c.reloadCmd) await runHook(c.reloadCmd, ctx, "files: reload");
      if (endpoint) {
        const paths = all().map((o) => o.path);
        await verifyDeployed(
          ctx,
          "the service",
          endpoint,
          `does it read ${paths.join(" or ")}${c.reloadCmd ? "" : ", and does it need a --reload-cmd"}?`,
        );
      }
    },
  };
}

export const filesKind: TargetKind<FilesConfig> = {
  kind: "files",
  summary:
    "copy cert, key, chain, fullchain, key+fullchain PEM or PKCS#12 to given paths; --reload-cmd; --verify",
  options: FILES_OPTIONS,
  fromOptions: filesFromOptions,
  parse: filesParse,
  create: filesTarget,
};
