/**
 * What the mail-server targets (dovecot.ts, postfix.ts) share: finding the service's own tools
 * (doveconf, doveadm, postconf, postfix live in /usr/sbin on some systems, which cron's PATH lacks),
 * running them as argv arrays with a timeout, the reload step (the service's own command, or one the
 * operator wrote such as a sudo rule), and the verify setting (an endpoint, or off).
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import { type ParsedOptions, str } from "../cli/options";
import { UsageError, WileError } from "../util/errors";
import { describeExit, lastLines, run } from "../util/spawn";
import { printable } from "../util/text";
import { checkCommandProgram, type OutputFile, optionalString } from "./files";
import { RELOAD_TIMEOUT_MS, runHook } from "./reload";
import { type DeployContext, DeployError } from "./target";
import { type Endpoint, formatEndpoint, parseEndpoint, type VerifyProtocol, verifySetting } from "./verify";

/** Where system tools live besides PATH (a user's crontab runs with PATH=/usr/bin:/bin). */
export const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** How long doveconf/postconf may take. */
export const QUERY_TIMEOUT_MS = 30_000;

/** A program the target runs itself, and the package that brings it (for the error message). */
export interface Tool {
  name: string;
  /** "Dovecot", "Postfix". */
  service: string;
  /** Debian's package: "dovecot-core", "postfix". */
  pkg: string;
}

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** The absolute path of `name`: PATH first, then the sbin directories; undefined when absent. */
export async function findProgram(
  name: string,
  env: Record<string, string | undefined> = process.env,
): Promise<string | undefined> {
  if (name.includes("/")) return (await executable(name)) ? name : undefined;
  const dirs = (env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  for (const d of SBIN_DIRS) if (!dirs.includes(d)) dirs.push(d);
  for (const dir of dirs) {
    const p = join(dir, name);
    if (await executable(p)) return p;
  }
  return undefined;
}

/** findProgram, or a DeployError naming the service and its package. */
export async function requireProgram(tool: Tool, label: string): Promise<string> {
  const path = await findProgram(tool.name);
  if (path) return path;
  throw new DeployError(
    `${label}: ${tool.name} was not found (looked in PATH and ${SBIN_DIRS.join(", ")}); is ${tool.service} installed here?`,
    {
      hint: `${tool.name} comes with ${tool.service} (Debian/Ubuntu package ${tool.pkg}). Deploy on the host that runs ${tool.service}, or use --deploy ssh.`,
    },
  );
}

export interface ToolResult {
  argv: string[];
  code: number | null;
  stdout: string;
  stderr: string;
  /** `postconf -c /x -h y` (program by its name): for messages. */
  shown: string;
  /** "exit 1", "timed out after 30 s" when it failed, else "". */
  failure: string;
  /** Its last lines of output (stderr first), on one line. */
  output: string;
}

/** "postconf -h x failed (exit 1): <its output>". */
export function failedMessage(r: ToolResult): string {
  return `${r.shown} failed (${r.failure})${r.output ? `: ${r.output}` : ""}`;
}

/** Runs the tool with `args` (no shell). Only a tool that cannot be started is thrown (DeployError). */
export async function runTool(
  tool: Tool,
  args: string[],
  label: string,
  timeoutMs = QUERY_TIMEOUT_MS,
): Promise<ToolResult> {
  const path = await requireProgram(tool, label);
  const argv = [path, ...args];
  const shown = [tool.name, ...args].join(" ");
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run(argv, { timeoutMs, env: { ...process.env, LANG: "C", LC_ALL: "C" } });
  } catch (err) {
    throw new DeployError(`${label}: cannot run ${shown}: ${(err as Error).message}`);
  }
  const failure = r.code !== 0 || r.timedOut ? describeExit(r, timeoutMs) : "";
  const output = lastLines(r);
  return { argv, code: r.code, stdout: r.stdout, stderr: r.stderr, shown, failure, output };
}

/** The file contents for a certificate path and a key path; one path for both gets key then fullchain. */
export function certKeyOutputs(certPath: string, keyPath: string, certWhat: string): OutputFile[] {
  if (certPath === keyPath) {
    return [
      { path: certPath, what: `${certWhat} (key and certificate)`, secret: true, content: keyThenChain },
    ];
  }
  return [
    { path: certPath, what: `${certWhat} (fullchain)`, secret: false, content: (x) => x.files.fullchainPem },
    { path: keyPath, what: "key", secret: true, content: (x) => x.files.privkeyPem },
  ];
}

/** The private key followed by the leaf and its chain (the order Postfix's chain files demand). */
export function keyThenChain(ctx: DeployContext): string {
  const key = ctx.files.privkeyPem.endsWith("\n") ? ctx.files.privkeyPem : `${ctx.files.privkeyPem}\n`;
  return key + ctx.files.fullchainPem;
}

/** A path read from the service's configuration: absolute, or a DeployError naming the setting. */
export function configuredPath(value: string, setting: string, label: string): string {
  if (!isAbsolute(value)) {
    throw new DeployError(`${label}: ${setting} is "${printable(value, 200)}", not an absolute path`, {
      hint: "Give the paths explicitly (see --help), or write an absolute path in the service's configuration.",
    });
  }
  return value;
}

/** `--<kind>-verify`: undefined (default endpoint), false (off), or a normalized host:port:protocol. */
export function verifyFromOptions(
  opts: ParsedOptions,
  option: string,
  defaults: { port: number; protocol: VerifyProtocol },
): string | false | undefined {
  const v = str(opts, option);
  return v === undefined ? undefined : verifySetting(v, defaults);
}

/** The verify setting read back from renewal.json. */
export function verifyFromRaw(
  raw: Record<string, unknown>,
  where: string,
  defaults: { port: number; protocol: VerifyProtocol },
): string | false | undefined {
  if (raw.verify === false) return false;
  const v = optionalString(raw, "verify", where);
  if (v === undefined) return undefined;
  try {
    return formatEndpoint(parseEndpoint(v, defaults));
  } catch (err) {
    throw new WileError(`${where}.verify: ${(err as Error).message}`);
  }
}

/** The endpoint to check, or undefined when verification is off. */
export function verifyEndpoint(
  verify: string | false | undefined,
  fallback: string,
  defaults: { port: number; protocol: VerifyProtocol },
): Endpoint | undefined {
  return verify === false ? undefined : parseEndpoint(verify ?? fallback, defaults);
}

/** A `--<kind>-reload` command: non-empty. */
export function reloadFromOptions(opts: ParsedOptions, option: string): string | undefined {
  const v = str(opts, option);
  if (v === undefined) return undefined;
  if (v.trim() === "") throw new UsageError(`--${option} needs a command`);
  return v;
}

/** Before anything changes: the reload can be run (the tool exists, or the command's program does). */
export async function checkReload(tool: Tool, reloadCmd: string | undefined, label: string): Promise<void> {
  if (reloadCmd !== undefined) await checkCommandProgram(reloadCmd, `${label}: reload`);
  else await requireProgram(tool, `${label}: reload`);
}

/**
 * Reloads the service: the operator's command (sh -c, hook environment), else `tool args` (argv).
 * A failure is a DeployError that says the files are already in place.
 */
export async function reloadService(
  ctx: DeployContext,
  tool: Tool,
  args: string[],
  reloadCmd: string | undefined,
  label: string,
  nonRootHint: string,
): Promise<void> {
  if (reloadCmd !== undefined) {
    await runHook(reloadCmd, ctx, `${label}: reload`);
    return;
  }
  ctx.logger.info(`${ctx.name}: ${label}: running ${[tool.name, ...args].join(" ")}`);
  const r = await runTool(tool, args, `${label}: reload`, RELOAD_TIMEOUT_MS);
  if (!r.failure) return;
  const notRoot = typeof process.getuid === "function" && process.getuid() !== 0;
  throw new DeployError(`${label}: ${failedMessage(r)}`, {
    hint: `The new files are in place but ${tool.service} did not reload. ${notRoot ? nonRootHint : "Check the service's log."} Then run wile deploy NAME again.`,
  });
}
