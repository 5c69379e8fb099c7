import { summaryLine } from "../../renew/run";
import { acquireLock } from "../../store/lock";
import type { Logger } from "../../util/log";
import type { Command } from "../command";
import { flag, str } from "../options";
import { outcomesJson, PARALLEL_OPTION, parseParallel, renewMany, runLockPath } from "./renew";

export const cronCommand: Command = {
  name: "cron",
  summary: "check every certificate and renew the due ones (what the crontab line runs)",
  usage: "wile cron [--parallel N] [-v]",
  description: [
    "Meant to run from cron twice a day (wile install-cron sets that up). Prints nothing when all",
    "is well; a failure is reported on stderr, so cron mails it, and every step goes to the log",
    "file. Other certificates are still processed after one fails. Exit 0 when nothing failed,",
    "1 otherwise. A second run started while one is running exits 0 at once.",
  ].join("\n"),
  options: [PARALLEL_OPTION],
  examples: ["wile cron", "wile cron -v --parallel 8"],
  async run(ctx) {
    const { out, opts } = ctx;
    const parallel = parseParallel(str(opts, "parallel"));
    const lock = await acquireLock(runLockPath(ctx.home));
    if (!lock) {
      out.logger.info("another wile cron is running in this home; nothing to do");
      return 0;
    }
    try {
      // Quiet unless something fails: progress only with -v.
      const quiet: Logger = {
        info: (m) => out.logger.debug(m),
        warn: (m) => out.logger.debug(`warning: ${m}`),
        debug: (m) => out.logger.debug(m),
      };
      const outcomes = await renewMany(ctx, quiet, { force: false, parallel });
      const failed = outcomes.filter((o) => o.status === "failed");
      if (out.jsonMode) out.json(outcomesJson(outcomes));
      for (const f of failed) out.error(`${f.name}: ${f.reason}`, f.hint);
      if (failed.length > 0 || flag(opts, "verbose")) out.logger.info(summaryLine(outcomes));
      return failed.length > 0 ? 1 : 0;
    } finally {
      await lock.release();
    }
  },
};
