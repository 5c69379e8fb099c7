import type { Command } from "./cli/command";
import { helpCommand } from "./cli/commands/help";
import { versionCommand } from "./cli/commands/version";
import { commandHelp, generalHelp } from "./cli/help";
import { parseOptions } from "./cli/options";
import { createOutput, type Io } from "./cli/output";
import { VERIFY_WAIT_MS } from "./deploy/target";
import { fileError } from "./store/file-errors";
import { checkHome, resolveHome } from "./store/paths";
import { UsageError, WileError } from "./util/errors";
import { openFileLog } from "./util/logfile";
import { useSourceMapStacks } from "./util/stack";
import { VERSION } from "./version";

/**
 * The commands, in the order help lists them. Each module is loaded when its command runs: esbuild
 * turns these dynamic imports into lazily evaluated parts of the one bundle, so `wile version` and
 * `--help` of one command evaluate neither the ACME client nor node:https, node:tls, node:dns.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  issue: async () => (await import("./cli/commands/issue")).issueCommand,
  renew: async () => (await import("./cli/commands/renew")).renewCommand,
  deploy: async () => (await import("./cli/commands/deploy")).deployCommand,
  cron: async () => (await import("./cli/commands/cron")).cronCommand,
  list: async () => (await import("./cli/commands/list")).listCommand,
  revoke: async () => (await import("./cli/commands/revoke")).revokeCommand,
  remove: async () => (await import("./cli/commands/remove")).removeCommand,
  account: async () => (await import("./cli/commands/account")).accountCommand,
  "dns-persist": async () => (await import("./cli/commands/dns-persist")).dnsPersistCommand,
  stateless: async () => (await import("./cli/commands/stateless")).statelessCommand,
  "install-cron": async () => (await import("./cli/commands/install-cron")).installCronCommand,
  "uninstall-cron": async () => (await import("./cli/commands/uninstall-cron")).uninstallCronCommand,
  upgrade: async () => (await import("./cli/commands/upgrade")).upgradeCommand,
  uninstall: async () => (await import("./cli/commands/uninstall")).uninstallCommand,
  config: async () => (await import("./cli/commands/config")).configCommand,
  version: async () => versionCommand,
};
const NAMES = [...Object.keys(COMMANDS), "help"];

/** Every command, loaded (general help lists them all). */
async function allCommands(): Promise<Command[]> {
  const all: Command[] = await Promise.all(Object.values(COMMANDS).map((load) => load()));
  all.push(helpCommand(() => all));
  return all;
}

async function loadCommand(name: string): Promise<Command | undefined> {
  if (name === "help") return (await allCommands()).at(-1);
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name]?.() : undefined;
}

/**
 * process.stdout and process.stderr are streams that Node makes when first touched (loading
 * node:net or node:tty for a pipe or a terminal): each is made only when used.
 */
function processIo(): Io {
  return {
    stdout: { write: (s: string) => process.stdout.write(s) },
    stderr: { write: (s: string) => process.stderr.write(s) },
    get stderrIsTTY() {
      return process.stderr.isTTY === true;
    },
    get stdoutIsTTY() {
      return process.stdout.isTTY === true;
    },
  };
}

/**
 * Runs one wile command and returns its exit code. The only place that turns errors into output:
 * a WileError prints its message and hint (stack with -v); anything else is a bug and says so.
 */
export async function runMain(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
  io: Io = processIo(),
): Promise<number> {
  const wantsJson = argv.includes("--json");
  const verbose = argv.includes("-v") || argv.includes("--verbose");
  if (verbose) useSourceMapStacks();
  const out = createOutput(io, env, { json: wantsJson, verbose });
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      // A usage error: the help goes to stderr so that scripts do not take it for a result.
      io.stderr.write(`${generalHelp(await allCommands())}\n`);
      return 2;
    }
    if (first === "--help" || first === "-h") {
      out.print(generalHelp(await allCommands()));
      return 0;
    }
    if (first === "--version" || first === "-V")
      return await versionCommand.run(context(rest, versionCommand));
    const cmd = await loadCommand(first);
    if (!cmd) {
      throw new UsageError(`unknown command "${first}"`, {
        hint: `Commands: ${NAMES.join(", ")}. Run 'wile help'.`,
      });
    }
    if (rest.includes("--help") || rest.includes("-h")) {
      const topic = rest.find((a) => !a.startsWith("-"));
      out.print((topic !== undefined && cmd.topicHelp?.(topic)) || commandHelp(cmd));
      return 0;
    }
    const ctx = context(rest, cmd);
    // Before the log is opened: a home that is a file or cannot be written is a usage error (exit 2).
    if (cmd.logs || cmd.name === "list")
      await checkHome(ctx.home, { write: cmd.logs === true && cmd.name !== "upgrade" });
    attachLog(ctx.home, cmd);
    return await cmd.run(ctx);
  } catch (err) {
    return report(err, out, wantsJson, verbose, io);
  }

  function context(rest: string[], cmd: Command) {
    const opts = parseOptions(rest, cmd.options);
    const home = resolveHome(typeof opts.home === "string" ? opts.home : undefined, env);
    return { argv: rest, opts, out, env, home, verifyWaitMs: verifyWaitMs(env) };
  }

  function attachLog(home: string, cmd: Command) {
    if (!cmd.logs) return;
    out.attachLog(
      openFileLog(home, {
        verbose,
        onError: (e) => out.logger.warn(`cannot write the log file: ${e.message}`),
      }),
    );
    out.quiet.info(`wile ${VERSION}: ${cmd.name}`);
  }
}

/**
 * WILE_VERIFY_WAIT_MS: how long a deploy's verify keeps retrying a service that still serves
 * another certificate (default 10 s). A knob for tests, which provoke that mismatch on purpose and
 * need not wait, and for services slow to reload; deliberately not in --help.
 */
function verifyWaitMs(env: Record<string, string | undefined>): number {
  const raw = env.WILE_VERIFY_WAIT_MS;
  if (raw === undefined || raw === "") return VERIFY_WAIT_MS;
  if (!/^\d{1,7}$/.test(raw)) {
    throw new UsageError(`WILE_VERIFY_WAIT_MS must be a number of milliseconds, not "${raw}"`, {
      hint: "Unset it for the default (10000), or set it to, for example, 30000.",
    });
  }
  return Number(raw);
}

function report(
  err: unknown,
  out: ReturnType<typeof createOutput>,
  json: boolean,
  verbose: boolean,
  io: Io,
): number {
  // A file system error with a path (EACCES, EROFS, ENOTDIR, ...) is the home's or the operator's to
  // fix: say which path and how, not "a bug in wile".
  const wile = err instanceof WileError ? err : fileError(err);
  const message = wile ? wile.message : `internal error: ${(err as Error)?.message ?? String(err)}`;
  const hint = wile
    ? wile.hint
    : "This is a bug in wile. Run again with -v and report the output (it contains no secrets).";
  const code = wile ? wile.exitCode : 1;
  out.error(message, hint);
  if (verbose && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  if (json) {
    const type = (err as { type?: unknown }).type;
    out.json({
      ok: false,
      error: {
        message,
        ...(hint ? { hint } : {}),
        exitCode: code,
        ...(typeof type === "string" ? { type } : {}),
      },
    });
  }
  return code;
}
