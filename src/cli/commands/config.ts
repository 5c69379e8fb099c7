import { type ConfigPatch, configPath, isHttpUrl, readConfig, updateConfig } from "../../store/config";
import { UsageError } from "../../util/errors";
import type { Logger } from "../../util/log";
import { afterRun, type RunReport } from "../../util/notify";
import { parseEmails } from "../ca-options";
import type { Command } from "../command";
import { flag, list, type OptionSpec, type ParsedOptions, str } from "../options";

/**
 * The notification options. `wile config` takes them; `wile cron` may take them too and persist
 * them with configPatchFromOptions() + updateConfig() (the issue: "settings persist in the home's
 * config").
 */
export const NOTIFY_OPTIONS: OptionSpec[] = [
  {
    name: "notify-cmd",
    type: "string",
    arg: "CMD",
    help: "shell command run after a cron run with failures; gets WILE_EVENT, WILE_SUMMARY, WILE_FAILED, WILE_RENEWED and the JSON report on stdin",
  },
  {
    name: "notify-url",
    type: "string",
    arg: "URL",
    help: "http(s) URL that gets a POST of the JSON run report",
  },
  { name: "notify-on", type: "string", arg: "failure|always", help: "when to notify (default: failure)" },
  {
    name: "heartbeat-url",
    type: "string",
    arg: "URL",
    help: "http(s) URL fetched after every cron run without failures (dead-man's switch)",
  },
];

const UNSETTABLE: Record<string, keyof ConfigPatch> = {
  "notify-cmd": "notifyCmd",
  "notify-url": "notifyUrl",
  "notify-on": "notifyOn",
  "heartbeat-url": "heartbeatUrl",
  email: "email",
  cron: "cron",
};

/** The config changes asked for by NOTIFY_OPTIONS (empty when none was given); UsageError on bad values. */
export function configPatchFromOptions(opts: ParsedOptions): ConfigPatch {
  const patch: ConfigPatch = {};
  const cmd = str(opts, "notify-cmd");
  if (cmd !== undefined) patch.notifyCmd = cmd;
  for (const [name, key] of [
    ["notify-url", "notifyUrl"],
    ["heartbeat-url", "heartbeatUrl"],
  ] as const) {
    const v = str(opts, name);
    if (v === undefined) continue;
    if (!isHttpUrl(v)) {
      throw new UsageError(`--${name} must be an http:// or https:// URL, not "${v}"`);
    }
    patch[key] = v;
  }
  const on = str(opts, "notify-on");
  if (on !== undefined) {
    if (on !== "failure" && on !== "always")
      throw new UsageError(`--notify-on must be "failure" or "always", not "${on}"`);
    patch.notifyOn = on;
  }
  return patch;
}

export const configCommand: Command = {
  name: "config",
  summary: "show or change the home's settings (notifications, heartbeat)",
  usage:
    "wile config [--notify-cmd CMD] [--notify-url URL] [--notify-on failure|always] [--heartbeat-url URL] [--unset NAME] [--test-notify]",
  description: [
    "Settings kept in <home>/config.json and used by 'wile cron'. Without options, shows them.",
    "A notification that fails is logged as a warning and never changes wile cron's exit code.",
    "--test-notify sends a test report (event 'success', nothing failed) to the configured command",
    "and URL, and fetches the heartbeat URL, so you can check them now.",
  ].join("\n"),
  options: [
    ...NOTIFY_OPTIONS,
    {
      name: "unset",
      type: "string",
      repeat: true,
      arg: "NAME",
      help: `remove a setting: ${Object.keys(UNSETTABLE).join(", ")}`,
    },
    { name: "test-notify", type: "boolean", help: "send a test notification and heartbeat now" },
    {
      name: "email",
      type: "string",
      repeat: true,
      arg: "ADDR",
      help: "default contact for new ACME accounts (repeatable; install.sh --email sets it)",
    },
  ],
  logs: true,
  examples: [
    "wile config",
    "wile config --notify-cmd 'mail -s \"wile: $WILE_SUMMARY\" root'",
    "wile config --notify-url https://hooks.example.com/wile --notify-on always",
    "wile config --heartbeat-url https://hc-ping.com/your-uuid",
    "wile config --unset notify-url",
    "wile config --test-notify",
  ],
  async run({ opts, out, home }) {
    const patch = configPatchFromOptions(opts);
    const emails = list(opts, "email");
    if (emails.length > 0) patch.email = parseEmails(emails);
    for (const name of list(opts, "unset")) {
      const key = UNSETTABLE[name];
      if (!key) {
        throw new UsageError(`--unset ${name}: no such setting`, {
          hint: `Settings: ${Object.keys(UNSETTABLE).join(", ")}.`,
        });
      }
      if (key in patch) throw new UsageError(`--unset ${name} and --${name} together`);
      patch[key] = undefined;
    }
    const changing = Object.keys(patch).length > 0;
    const cfg = changing ? await updateConfig(home, patch) : await readConfig(home);
    if (changing) out.logger.info(`Saved ${configPath(home)}.`);

    if (flag(opts, "test-notify")) {
      if (!cfg.notifyCmd && !cfg.notifyUrl && !cfg.heartbeatUrl) {
        throw new UsageError("nothing to test: no notify-cmd, notify-url or heartbeat-url is set", {
          hint: "Set one first, e.g. wile config --notify-url https://hooks.example.com/wile",
        });
      }
      const now = new Date().toISOString();
      const report: RunReport = {
        checked: 0,
        renewed: [],
        failed: [],
        skipped: 0,
        startedAt: now,
        finishedAt: now,
        summary: "test notification from wile config --test-notify",
      };
      let warnings = 0;
      const counting: Logger = {
        info: (m) => out.logger.info(m),
        warn: (m) => {
          warnings++;
          out.logger.warn(m);
        },
        debug: (m) => out.logger.info(m),
      };
      await afterRun({ ...cfg, notifyOn: "always" }, report, counting);
      if (warnings > 0) return 1;
      out.logger.info("Test notification sent.");
    }

    if (out.jsonMode) out.json({ ok: true, path: configPath(home), config: cfg });
    else if (!changing && !flag(opts, "test-notify")) {
      const row = (k: string, v: string | undefined) => `${k.padEnd(14)} ${v ?? "-"}`;
      out.print(
        [
          row("notify-cmd", cfg.notifyCmd),
          row("notify-url", cfg.notifyUrl),
          row("notify-on", cfg.notifyOn),
          row("heartbeat-url", cfg.heartbeatUrl),
          row("email", cfg.email?.join(", ")),
          row(
            "cron",
            cfg.cron
              ? `${cfg.cron.minute} ${cfg.cron.hours[0]},${cfg.cron.hours[1]} * * * (install-cron)`
              : undefined,
          ),
        ].join("\n"),
      );
    }
    return 0;
  },
};
