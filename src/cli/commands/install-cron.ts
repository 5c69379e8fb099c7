import { existsSync } from "node:fs";
import { userInfo } from "node:os";
import {
  CrontabMissingError,
  cronDaemonLooksStopped,
  cronLine,
  currentProgram,
  findWileLines,
  parseSchedule,
  randomSchedule,
  readCrontab,
  type Schedule,
  scheduleFields,
  upsertLine,
  writeCrontab,
} from "../../cron/crontab";
import { enableCommands, installUnits, unitFiles } from "../../cron/systemd";
import { readConfig, updateConfig } from "../../store/config";
import { WileError } from "../../util/errors";
import type { Command } from "../command";
import { flag } from "../options";

export const installCronCommand: Command = {
  name: "install-cron",
  summary: "renew automatically: add wile to your crontab (or a systemd user timer)",
  usage: "wile install-cron [--systemd] [--dry-run]",
  description: [
    "Adds one line to your own crontab (no root needed) that runs 'wile cron' twice a day, at a",
    "random minute and a random pair of hours 12 h apart, e.g.",
    "  17 4,16 * * * /usr/bin/node /opt/wile/wile.cjs cron --home /home/me/.wile # wile:/home/me/.wile",
    "The time is chosen once and kept in <home>/config.json, so installing again changes nothing.",
    "'wile cron' logs to <home>/logs/wile.log, prints nothing when all is well and its failures on",
    "stderr, so cron mails you exactly the failures (set MAILTO in the crontab to choose where).",
    "Each home (--home) gets its own line. Without cron, --systemd writes a systemd user timer",
    "(~/.config/systemd/user/wile.timer) instead.",
  ].join("\n"),
  options: [
    { name: "systemd", type: "boolean", help: "use a systemd user timer instead of the crontab" },
    { name: "dry-run", type: "boolean", help: "show what would be installed, change nothing" },
  ],
  logs: true,
  examples: [
    "wile install-cron",
    "wile install-cron --dry-run",
    "wile install-cron --home /srv/wile-mail",
    "wile install-cron --systemd",
  ],
  async run({ opts, out, env, home }) {
    const dryRun = flag(opts, "dry-run");
    const cfg = await readConfig(home);
    const program = currentProgram();

    if (flag(opts, "systemd")) {
      const schedule = cfg.cron ?? randomSchedule();
      const units = unitFiles(schedule, program, home, env);
      if (dryRun) {
        if (out.jsonMode) {
          out.json({ ok: true, dryRun: true, method: "systemd", schedule, units });
        } else {
          out.print(`# ${units.servicePath}\n${units.service}\n# ${units.timerPath}\n${units.timer}`);
          out.logger.info("Dry run: nothing was written.");
        }
        return 0;
      }
      if (!cfg.cron) await updateConfig(home, { cron: schedule });
      const r = await installUnits(units, env);
      const at = times(schedule);
      if (r.enabled) {
        out.logger.info(
          r.changed
            ? `Installed ${units.timerPath}: wile cron runs at ${at} (enabled).`
            : `Already installed: ${units.timerPath} (wile cron at ${at}); timer enabled.`,
        );
      } else {
        out.logger.warn(`wrote ${units.timerPath}, but could not enable it here: ${r.systemctlError}`);
        out.logger.info(
          `Enable it from a login session of ${user()} with:\n  ${enableCommands(units.name).join("\n  ")}`,
        );
      }
      out.logger.info(
        `So that the timer also runs while you are logged out: loginctl enable-linger ${user()} (once, as root if needed).`,
      );
      if (out.jsonMode) {
        out.json({
          ok: true,
          method: "systemd",
          changed: r.changed,
          enabled: r.enabled,
          schedule,
          service: units.servicePath,
          timer: units.timerPath,
          ...(r.enabled ? {} : { run: enableCommands(units.name) }),
        });
      }
      return 0;
    }

    let current: string;
    try {
      current = await readCrontab();
    } catch (e) {
      if (e instanceof CrontabMissingError && dryRun) current = "";
      else throw e;
    }
    // The schedule: the one in config.json, else the one of a line already installed, else a new one.
    const existing = findWileLines(current, home)[0];
    const schedule: Schedule =
      cfg.cron ?? (existing ? parseSchedule(existing) : undefined) ?? randomSchedule();
    const line = cronLine(schedule, program, home);
    if (dryRun) {
      if (out.jsonMode) out.json({ ok: true, dryRun: true, method: "crontab", schedule, line });
      else {
        out.print(line);
        out.logger.info("Dry run: the crontab was not changed.");
      }
      return 0;
    }
    if (!cfg.cron) await updateConfig(home, { cron: schedule });
    const result = upsertLine(current, home, line);
    if (result.status !== "unchanged") {
      await writeCrontab(result.text);
      // Read back: another program may have changed the crontab at the same moment.
      const check = findWileLines(await readCrontab(), home);
      if (check.length !== 1 || check[0] !== line) {
        throw new WileError(
          "the crontab did not keep wile's line (changed by something else at the same time?)",
          {
            hint: "Look at it with crontab -l and run wile install-cron again.",
          },
        );
      }
    }
    const human =
      result.status === "unchanged"
        ? `Already installed in the crontab of ${user()}: wile cron runs at ${times(schedule)}.`
        : `${result.status === "added" ? "Installed" : "Updated"} in the crontab of ${user()}: wile cron runs at ${times(schedule)}.`;
    out.logger.info(human);
    out.logger.info(`  ${line}`);
    if (cronDaemonLooksStopped(existsSync)) {
      out.logger.warn(
        "the cron daemon does not seem to be running (no /run/crond.pid): it must run for the line to do anything (as root: systemctl enable --now cron)",
      );
    }
    if (out.jsonMode) {
      out.json({
        ok: true,
        method: "crontab",
        changed: result.status !== "unchanged",
        status: result.status,
        schedule,
        line,
      });
    }
    return 0;
  },
};

function times(s: Schedule): string {
  const mm = String(s.minute).padStart(2, "0");
  return `${s.hours.map((h) => `${String(h).padStart(2, "0")}:${mm}`).join(" and ")} (${scheduleFields(s)})`;
}

function user(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}
