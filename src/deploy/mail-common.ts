/**
 * What the mail-server targets (dovecot.ts, postfix.ts) share, imported there as `mail`: finding the service's own tools
 * (doveconf, doveadm, postconf, postfix live in /usr/sbin on some systems, which cron's PATH lacks),
 * running them as argv arrays with a timeout, the reload step (the service's own command, or one the
 * operator wrote such as a sudo rule), and the verify setting (an endpoint, or off).
 */
import { isAbsolute } from "node:path";
import { checkCommandProgram, findProgram, SBIN_DIRS } from "../util/programs";
import { command, path, withDefault } from "../util/settings";
import { describeExit, lastLines, run } from "../util/spawn";
import { printable } from "../util/text";
import { checkOutputs, type OutputFile, writeOutputs } from "./outputs";
import { keyThenFullchain } from "./pem-bundle";
import { RELOAD_TIMEOUT_MS, runHook } from "./reload";
import { type DeployContext, DeployError, type Target } from "./target";
import {
  describeEndpoint,
  type VerifyProtocol,
  verifyDeployed,
  verifyEndpoint,
  verifySetting,
} from "./verify";

/**
 * The settings the mail targets share, named after the kind: `config` (another instance),
 * `cert` + `key` (explicit paths instead of the service's own), `reloadCmd` (`--<kind>-reload`,
 * instead of the service's reload), `verify` (the endpoint checked afterwards, or off).
 */
export function settings(o: {
  kind: string;
  configArg: string;
  help: { config: string; cert: string; key: string; reload: string; verify: string };
  verify: { fallback: string; defaults: { port: number; protocol: VerifyProtocol } };
}) {
  return {
    config: path({ arg: o.configArg, help: o.help.config }),
    cert: path({ arg: "PATH", help: o.help.cert, needs: "key" }),
    key: path({ arg: "PATH", help: o.help.key, needs: "cert" }),
    reloadCmd: command({ flag: `${o.kind}-reload`, arg: "CMD", help: o.help.reload }),
    verify: withDefault(
      verifySetting({ help: o.help.verify, defaults: o.verify.defaults }),
      o.verify.fallback,
    ),
  };
}

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
      {
        path: certPath,
        what: `${certWhat} (key and certificate)`,
        secret: true,
        content: (x) => keyThenFullchain(x.files),
      },
    ];
  }
  return [
    { path: certPath, what: `${certWhat} (fullchain)`, secret: false, content: (x) => x.files.fullchainPem },
    { path: keyPath, what: "key", secret: true, content: (x) => x.files.privkeyPem },
  ];
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

/** Before anything changes: the reload can be run (the tool exists, or the command's program does). */
async function checkReload(tool: Tool, reloadCmd: string | undefined, label: string): Promise<void> {
  if (reloadCmd !== undefined) await checkCommandProgram(reloadCmd, `${label}: reload`);
  else await requireProgram(tool, `${label}: reload`);
}

/**
 * Reloads the service: the operator's command (sh -c, hook environment), else `tool args` (argv).
 * A failure is a DeployError that says the files are already in place.
 */
async function reloadService(
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

/** Where a mail target writes, and the setting that points the service there (for hints). */
export interface MailPlan {
  /** "ssl_cert", "smtpd_tls_chain_files", "--postfix-chain-file", ... */
  setting: string;
  /** The file that holds the new leaf. */
  certPath: string;
  outputs: OutputFile[];
}

/**
 * A mail-server target: plan the files (asking the service where, unless told), check them, write
 * them, reload with the service's tool (`<tool> [-c CONFIG] reload`) or the operator's command,
 * then verify the endpoint. The plan made by check() is the one deploy() writes.
 */
export function target(o: {
  kind: string;
  c: { config?: string; reloadCmd?: string; verify: string | false };
  defaults: { port: number; protocol: VerifyProtocol };
  reloadTool: Tool;
  nonRootHint: string;
  /** For describe() before the plan is known: "paths from doveconf". */
  unplanned: string;
  plan(ctx: DeployContext): Promise<MailPlan>;
}): Target {
  const { kind, c } = o;
  const endpoint = verifyEndpoint(c.verify, o.defaults);
  let plan: MailPlan | undefined;
  return {
    kind,
    describe: () =>
      `${kind} (${plan?.certPath ?? o.unplanned}${endpoint ? `, verify ${describeEndpoint(endpoint)}` : ""})`,
    async check(ctx) {
      plan = await o.plan(ctx);
      await checkOutputs(kind, plan.outputs, undefined);
      await checkReload(o.reloadTool, c.reloadCmd, kind);
    },
    async deploy(ctx) {
      plan ??= await o.plan(ctx);
      await writeOutputs(ctx, kind, plan.outputs, {});
      const args = [...(c.config !== undefined ? ["-c", c.config] : []), "reload"];
      await reloadService(ctx, o.reloadTool, args, c.reloadCmd, kind, o.nonRootHint);
      if (endpoint)
        await verifyDeployed(ctx, kind, endpoint, `does ${plan.setting} point at ${plan.certPath}?`);
    },
  };
}
