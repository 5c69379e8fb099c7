import { join } from "node:path";
import { lockedError } from "../../flow/cert-lock";
import { ClientPool } from "../../flow/client";
import { dnsLeftovers } from "../../flow/dns-leftovers";
import { DEFAULT_TIMEOUT_MS } from "../../flow/issue";
import type { Outcome } from "../../flow/lifecycle";
import { mapLimit, renewOne, summaryLine } from "../../renew/run";
import { RunIndex } from "../../renew/run-index";
import { CertStore } from "../../store/certs";
import { leftoverKinds, sweepLeftovers } from "../../store/leftovers";
import { acquireLock } from "../../store/lock";
import { NotDueError, UsageError } from "../../util/errors";

const NOT_DUE_EXIT = new NotDueError("not due").exitCode;

import type { Logger } from "../../util/log";
import type { Command, CommandContext } from "../command";
import { flag, type OptionSpec, str } from "../options";

const HOURS = 60 * 60 * 1000;
/** wile cron runs twice a day: what is due before the next run is renewed now. */
export const CRON_INTERVAL_MS = 12 * HOURS;

export const PARALLEL_OPTION: OptionSpec = {
  name: "parallel",
  type: "string",
  arg: "N",
  help: "renew up to N certificates at once (default 4)",
};

export const TIMEOUT_OPTION: OptionSpec = {
  name: "timeout",
  type: "string",
  arg: "SECONDS",
  help: `give up on a certificate after SECONDS, whatever the CA does: every request, retry and wait for validation or issuance counts (default ${DEFAULT_TIMEOUT_MS / 1000})`,
};

/** --timeout in ms. */
export function parseTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 86_400) {
    throw new UsageError(`--timeout "${value}" is not a whole number of seconds from 1 to 86400`, {
      hint: `Example: --timeout 600 (the default is ${DEFAULT_TIMEOUT_MS / 1000}).`,
    });
  }
  return n * 1000;
}

export function parseParallel(value: string | undefined): number {
  if (value === undefined) return 4;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new UsageError(`--parallel "${value}" is not a whole number from 1 to 64`);
  }
  return n;
}

/** The lock that keeps two runs over all certificates (cron, renew --all) apart. */
export function runLockPath(home: string): string {
  return join(home, "cron.lock");
}

/** Logger lines for one certificate among many, prefixed with its name. */
export function prefixed(logger: Logger, name: string): Logger {
  return {
    info: (m) => logger.info(m.startsWith(`${name}:`) ? m : `${name}: ${m}`),
    warn: (m) => logger.warn(m.startsWith(`${name}:`) ? m : `${name}: ${m}`),
    debug: (m) => logger.debug(m.startsWith(`${name}:`) ? m : `${name}: ${m}`),
  };
}

/**
 * Checks every certificate (or the named ones), renewing the due ones; the run's outcomes, sorted
 * by name. Over every certificate without --force (cron, renew --all: the caller holds cron.lock),
 * the index of renew/run-index.ts spares the full check of certificates that did not change.
 */
export async function renewMany(
  ctx: CommandContext,
  logger: Logger,
  opts: { names?: string[]; force: boolean; parallel: number; timeoutMs: number; command: string },
): Promise<Outcome[]> {
  const now = new Date();
  const kinds = [dnsLeftovers(ctx.home, ctx.env)];
  const index =
    opts.names || opts.force
      ? undefined
      : await RunIndex.open(
          ctx.home,
          logger,
          now,
          CRON_INTERVAL_MS,
          leftoverKinds(kinds).map((k) => k.file),
        );
  // Without the index every directory is swept (sweep: undefined).
  const plan: { known: Outcome[]; check: string[]; sweep?: string[] } = index
    ? await index.plan()
    : { known: [], check: opts.names ?? (await new CertStore(ctx.home).names()) };
  // What runs killed with -9 left in webroots and zones goes first (certificates locked by a live
  // run excepted).
  await sweepLeftovers(ctx.home, logger, kinds, plan.sweep);
  const pool = new ClientPool(logger);
  let checked: Outcome[];
  try {
    checked = await mapLimit(plan.check, opts.parallel, (name) =>
      renewOne(name, {
        home: ctx.home,
        pool,
        logger: prefixed(logger, name),
        force: opts.force,
        now,
        nextRun: new Date(now.getTime() + CRON_INTERVAL_MS),
        verifyWaitMs: ctx.verifyWaitMs,
        timeoutMs: opts.timeoutMs,
        command: opts.command,
        ...(index ? { index } : {}),
      }),
    );
  } finally {
    await pool.close();
  }
  await index?.save();
  if (plan.known.length === 0) return checked;
  return [...plan.known, ...checked].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function outcomesJson(outcomes: Outcome[]) {
  return { summary: summaryLine(outcomes), certificates: outcomes };
}

export const renewCommand: Command = {
  name: "renew",
  summary: "renew one certificate, or all with --all, if due (or now with --force)",
  usage: "wile renew NAME [--force] | wile renew --all [--force] [--parallel N]",
  description: [
    "Replays the settings in renewal.json (names, webroots, key type, CA, profile). A certificate is",
    "due when the CA's renewal window (ARI) says so, or when a third of its lifetime is left (half",
    "for lifetimes under 10 days), or --renew-days before expiry if it was issued with that. Exit 0",
    "renewed (or, with --all, nothing failed), 1 failed, 3 not due (a single NAME only). A",
    "certificate another wile run is working on is left alone, and that run is named (pid, since).",
  ].join("\n"),
  options: [
    { name: "all", type: "boolean", help: "every certificate in this home" },
    { name: "force", type: "boolean", help: "renew even if not due" },
    PARALLEL_OPTION,
    TIMEOUT_OPTION,
  ],
  logs: true,
  examples: [
    "wile renew example.com",
    "wile renew example.com --force && systemctl reload nginx",
    "wile renew --all",
  ],
  async run(ctx) {
    const { opts, out } = ctx;
    const all = flag(opts, "all");
    const names = opts._;
    if (all === names.length > 0) {
      throw new UsageError(
        all ? "give either NAME or --all, not both" : "which certificate? Give its NAME or --all",
        {
          hint: "wile list shows the names.",
        },
      );
    }
    if (names.length > 1) throw new UsageError("give one NAME (or --all)");
    const parallel = parseParallel(str(opts, "parallel"));
    const timeoutMs = parseTimeout(str(opts, "timeout"));
    const store = new CertStore(ctx.home);
    if (!all) {
      const name = names[0] as string;
      const known = await store.names();
      if (!known.includes(name)) {
        throw new UsageError(`no certificate named "${name}" in ${ctx.home}`, {
          hint: known.length > 0 ? `Known: ${known.join(", ")}.` : "wile issue creates one.",
        });
      }
    }
    const force = flag(opts, "force");
    if (!all) {
      // One certificate: its own lock is enough (a cron run busy with it makes this one say so).
      const outcomes = await renewMany(ctx, out.logger, {
        names,
        force,
        parallel,
        timeoutMs,
        command: `wile renew ${names[0]}`,
      });
      return report(ctx, outcomes, all);
    }
    const lock = await acquireLock(runLockPath(ctx.home), "wile renew --all");
    if (!lock) throw await lockedError(runLockPath(ctx.home), "this home's certificates are being renewed");
    try {
      const outcomes = await renewMany(ctx, out.logger, {
        force,
        parallel,
        timeoutMs,
        command: "wile renew --all",
      });
      return report(ctx, outcomes, all);
    } finally {
      await lock.release();
    }
  },
};

function report(ctx: CommandContext, outcomes: Outcome[], all: boolean): number {
  const { out } = ctx;
  if (out.jsonMode) out.json(outcomesJson(outcomes));
  for (const o of outcomes) {
    for (const w of o.warnings ?? []) out.logger.warn(`${o.name}: ${w}`);
    if (o.status === "failed") out.error(`${o.name}: ${o.reason}`, o.hint);
    else if (o.status !== "renewed") out.logger.info(`${o.name}: not renewed: ${o.reason}`);
    if (o.explanationURL)
      out.logger.info(`${o.name}: the CA explains its renewal window at ${o.explanationURL}`);
  }
  if (all) {
    out.logger.info(summaryLine(outcomes));
    return outcomes.some((o) => o.status === "failed") ? 1 : 0;
  }
  const only = outcomes[0];
  if (only?.status === "failed") return 1;
  if (only?.status === "renewed") return 0;
  // Not due (said above): exit 3, so that `wile renew x && reload` reloads only after a renewal.
  return NOT_DUE_EXIT;
}
