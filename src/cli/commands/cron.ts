import { summaryLine } from "../../renew/run";
import { configPath, type HomeConfig, readConfig, updateConfig } from "../../store/config";
import { fileError } from "../../store/file-errors";
import { acquireLock, describeLockHolder } from "../../store/lock";
import { WileError } from "../../util/errors";
import { afterRun, type RunReport } from "../../util/notify";
import type { Command } from "../command";
import { str } from "../options";
import { configPatchFromOptions, NOTIFY_OPTIONS } from "./config";
import {
  outcomesJson,
  PARALLEL_OPTION,
  parseParallel,
  parseTimeout,
  renewMany,
  runLockPath,
  TIMEOUT_OPTION,
} from "./renew";

export const cronCommand: Command = {
  name: "cron",
  summary: "check every certificate and renew the due ones (what the crontab line runs)",
  usage: "wile cron [--parallel N] [--notify-cmd CMD] [--notify-url URL] [--heartbeat-url URL] [-v]",
  description: [
    "Meant to run from cron twice a day (wile install-cron sets that up). Prints nothing when all",
    "is well; a failure is reported on stderr, so cron mails it, and every step goes to",
    "~/.wile/logs/wile.log. Other certificates are still processed after one fails. After a run with",
    "failures the notify command and URL are called; after one without, the heartbeat URL. The",
    "--notify-* and --heartbeat-url settings are kept in the home's config.json (see wile config).",
    "A broken config.json is reported and the run goes on without notifications. Exit 0 when",
    "nothing failed, 1 otherwise (a certificate failed, or config.json is broken). A run started",
    "while one is running exits 0 at once (the log, and -v, name the running one). A certificate",
    "whose files have not changed since the last run and whose next moment has not come is not read",
    "again (cron-index.json in the home, a cache: -v says how many were checked in full).",
  ].join("\n"),
  options: [PARALLEL_OPTION, TIMEOUT_OPTION, ...NOTIFY_OPTIONS],
  logs: true,
  examples: [
    "wile cron",
    "wile cron -v --parallel 8",
    "wile cron --notify-cmd 'mail -s \"wile: $WILE_SUMMARY\" root' --heartbeat-url https://hc-ping.com/UUID",
  ],
  async run(ctx) {
    const { out, opts, home } = ctx;
    const parallel = parseParallel(str(opts, "parallel"));
    const timeoutMs = parseTimeout(str(opts, "timeout"));
    const patch = configPatchFromOptions(opts);
    // config.json holds only notification settings: a broken one must not stop the renewals. It is
    // reported, the run goes on without notifications, and the summary says so.
    let config: HomeConfig | null = null;
    let configError: WileError | null = null;
    try {
      config = Object.keys(patch).length > 0 ? await updateConfig(home, patch) : await readConfig(home);
    } catch (err) {
      configError =
        err instanceof WileError ? err : fileError(err, configPath(home), "notification settings");
      if (!configError) throw err;
    }
    const lock = await acquireLock(runLockPath(home), "wile cron");
    if (!lock) {
      const holder = await describeLockHolder(runLockPath(home));
      // Not an error (cron mails what it prints): said in the log, and on stderr with -v.
      out.quiet.info(`${holder ?? "another wile cron"} is renewing this home's certificates; nothing to do`);
      return 0;
    }
    try {
      const startedAt = new Date().toISOString();
      const outcomes = await renewMany(ctx, out.quiet, {
        force: false,
        parallel,
        timeoutMs,
        command: "wile cron",
      });
      const failed = outcomes.filter((o) => o.status === "failed");
      const summary = `${summaryLine(outcomes)}${configError ? `; no notifications: ${configPath(home)} is broken` : ""}`;
      if (out.jsonMode) {
        out.json({
          ...outcomesJson(outcomes),
          summary,
          ...(configError ? { configError: { message: configError.message, hint: configError.hint } } : {}),
        });
      }
      if (configError)
        out.error(`${configError.message} (this run sends no notifications)`, configError.hint);
      for (const o of outcomes) for (const w of o.warnings ?? []) out.logger.warn(`${o.name}: ${w}`);
      for (const f of failed) out.error(`${f.name}: ${f.reason}`, f.hint);
      if (failed.length > 0 || configError) out.logger.info(summary);
      else out.quiet.info(summary);
      const report: RunReport = {
        checked: outcomes.length,
        renewed: outcomes.filter((o) => o.status === "renewed").map((o) => o.name),
        failed: failed.map((f) => ({ name: f.name, error: f.reason })),
        skipped: outcomes.filter((o) => o.status === "not-due" || o.status === "waiting").length,
        startedAt,
        finishedAt: new Date().toISOString(),
        summary,
      };
      if (config) await afterRun(config, report, failed.length > 0 ? out.logger : out.quiet);
      return failed.length > 0 || configError ? 1 : 0;
    } finally {
      await lock.release();
    }
  },
};
