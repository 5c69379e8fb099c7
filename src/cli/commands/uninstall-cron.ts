import { userInfo } from "node:os";
import { CrontabMissingError, readCrontab, removeLines, writeCrontab } from "../../cron/crontab";
import { disableCommands, removeUnits, unitFiles } from "../../cron/systemd";
import { readFileIfExists } from "../../store/fs-safe";
import { WileError } from "../../util/errors";
import type { Command } from "../command";
import { flag } from "../options";

export const uninstallCronCommand: Command = {
  name: "uninstall-cron",
  summary: "stop automatic renewal: remove wile's line from your crontab (or the systemd timer)",
  usage: "wile uninstall-cron [--systemd] [--dry-run]",
  description: [
    "Removes exactly the line that 'wile install-cron' added for this home (it ends with",
    "'# wile:<home>'); every other line of the crontab stays as it was. Lines for other homes are",
    "kept. Certificates and settings are not touched. With --systemd, stops and removes the systemd",
    "user timer and service instead.",
  ].join("\n"),
  options: [
    { name: "systemd", type: "boolean", help: "remove the systemd user timer instead" },
    { name: "dry-run", type: "boolean", help: "show what would be removed, change nothing" },
  ],
  logs: true,
  examples: [
    "wile uninstall-cron",
    "wile uninstall-cron --home /srv/wile-mail",
    "wile uninstall-cron --systemd",
  ],
  async run({ opts, out, env, home }) {
    const dryRun = flag(opts, "dry-run");
    if (flag(opts, "systemd")) {
      // Only the names and paths matter here; the schedule and program do not.
      const units = unitFiles({ minute: 0, hours: [0, 12] }, ["wile"], home, env);
      if (dryRun) {
        const present: string[] = [];
        for (const p of [units.timerPath, units.servicePath])
          if ((await readFileIfExists(p)) !== null) present.push(p);
        if (out.jsonMode) out.json({ ok: true, dryRun: true, method: "systemd", remove: present });
        else if (present.length === 0) out.logger.info(`Nothing to remove: no ${units.timerPath}.`);
        else out.print(present.map((p) => `would remove ${p}`).join("\n"));
        return 0;
      }
      const r = await removeUnits(units, env);
      if (r.removed.length === 0) out.logger.info(`Nothing to remove: no ${units.timerPath}.`);
      else out.logger.info(`Removed ${r.removed.join(" and ")}.`);
      if (!r.disabled) {
        out.logger.warn(`could not reach systemd from here: ${r.systemctlError}`);
        out.logger.info(`Finish from a login session with:\n  ${disableCommands(units.name).join("\n  ")}`);
      }
      if (out.jsonMode) out.json({ ok: true, method: "systemd", removed: r.removed, disabled: r.disabled });
      return 0;
    }

    let current: string;
    try {
      current = await readCrontab();
    } catch (e) {
      if (e instanceof CrontabMissingError) {
        throw new WileError(
          "there is no crontab program on this system, so there is no wile line to remove",
          {
            hint: "If you installed a systemd timer instead, run: wile uninstall-cron --systemd",
          },
        );
      }
      throw e;
    }
    const result = removeLines(current, home);
    if (result.removed.length === 0) {
      out.logger.info(`Nothing to remove: the crontab of ${user()} has no wile line for ${home}.`);
      if (out.jsonMode) out.json({ ok: true, method: "crontab", changed: false, removed: [] });
      return 0;
    }
    if (dryRun) {
      if (out.jsonMode) out.json({ ok: true, dryRun: true, method: "crontab", removed: result.removed });
      else out.print(result.removed.map((l) => `would remove: ${l}`).join("\n"));
      return 0;
    }
    await writeCrontab(result.text);
    out.logger.info(`Removed from the crontab of ${user()}:`);
    for (const l of result.removed) out.logger.info(`  ${l}`);
    out.logger.info(
      "Certificates will no longer be renewed automatically for this home (wile install-cron puts it back).",
    );
    if (out.jsonMode) out.json({ ok: true, method: "crontab", changed: true, removed: result.removed });
    return 0;
  },
};

function user(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}
