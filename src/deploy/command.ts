/**
 * The "command" target: runs a command the operator wrote (sh -c) with the hook environment:
 * wile's WILE_* names plus certbot's RENEWED_LINEAGE/RENEWED_DOMAINS and acme.sh's CERT_PATH,
 * CERT_KEY_PATH, CA_CERT_PATH, CERT_FULLCHAIN_PATH, so existing deploy hooks work unchanged. A
 * non-zero exit, or running past the timeout, fails the deploy.
 */
import type { OptionSpec, ParsedOptions } from "../cli/options";
import { str } from "../cli/options";
import { UsageError, WileError } from "../util/errors";
import { checkCommandProgram, optionalString } from "./files";
import { RELOAD_TIMEOUT_MS, runHook } from "./reload";
import type { Target, TargetKind } from "./target";

export interface CommandConfig {
  kind: "command";
  command: string;
  /** Seconds (default 60). */
  timeout?: number;
}

const MAX_TIMEOUT_S = 3600;

export const COMMAND_OPTIONS: OptionSpec[] = [
  {
    name: "deploy-cmd",
    type: "string",
    arg: "CMD",
    help: "command: run this (sh -c) with WILE_*, RENEWED_LINEAGE, RENEWED_DOMAINS, CERT_PATH, CERT_KEY_PATH, CA_CERT_PATH, CERT_FULLCHAIN_PATH set",
  },
  {
    name: "deploy-timeout",
    type: "string",
    arg: "SECONDS",
    help: `command: kill it after this long (default ${RELOAD_TIMEOUT_MS / 1000}, at most ${MAX_TIMEOUT_S})`,
  },
];

function validTimeout(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= MAX_TIMEOUT_S;
}

function fromOptions(opts: ParsedOptions): CommandConfig {
  const command = str(opts, "deploy-cmd");
  if (command === undefined || command.trim() === "") {
    throw new UsageError("--deploy command needs --deploy-cmd CMD", {
      hint: "For example --deploy command --deploy-cmd '/usr/local/bin/push-cert.sh'",
    });
  }
  const c: CommandConfig = { kind: "command", command };
  const t = str(opts, "deploy-timeout");
  if (t !== undefined) {
    const n = /^\d+$/.test(t) ? Number(t) : Number.NaN;
    if (!validTimeout(n))
      throw new UsageError(`--deploy-timeout ${t}: expected whole seconds from 1 to ${MAX_TIMEOUT_S}`);
    c.timeout = n;
  }
  return c;
}

function parse(raw: Record<string, unknown>, where: string): CommandConfig {
  const command = optionalString(raw, "command", where);
  if (command === undefined) throw new WileError(`${where}.command: missing`);
  const c: CommandConfig = { kind: "command", command };
  if (raw.timeout !== undefined) {
    if (!validTimeout(raw.timeout))
      throw new WileError(`${where}.timeout: must be whole seconds from 1 to ${MAX_TIMEOUT_S}`);
    c.timeout = raw.timeout;
  }
  return c;
}

function create(c: CommandConfig): Target {
  return {
    kind: "command",
    describe: () => `command (${c.command.length > 60 ? `${c.command.slice(0, 57)}...` : c.command})`,
    async check() {
      await checkCommandProgram(c.command, "command");
    },
    async deploy(ctx) {
      await runHook(c.command, ctx, "command", (c.timeout ?? RELOAD_TIMEOUT_MS / 1000) * 1000);
    },
  };
}

export const commandKind: TargetKind<CommandConfig> = {
  kind: "command",
  summary: "run your own command with the certificate's paths in certbot's and acme.sh's variables",
  options: COMMAND_OPTIONS,
  fromOptions,
  parse,
  create,
};
