import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import type { DnsProviderKind } from "../../dns/provider";
import { DNS_PROVIDERS, dnsProvider } from "../../dns/registry";
import {
  type ConfigPatch,
  configPath,
  type DnsConfigValue,
  type HomeConfig,
  isHttpUrl,
  readConfig,
  updateConfig,
} from "../../store/config";
import { UsageError } from "../../util/errors";
import type { Logger } from "../../util/log";
import { afterRun, type RunReport } from "../../util/notify";
import type { Setting } from "../../util/settings";
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

/** `PROVIDER.SETTING` of --dns-credential / --unset dns.PROVIDER.SETTING: checked against the declarations. */
export function dnsSettingOf(
  spec: string,
  option: string,
): { kind: DnsProviderKind; key: string; setting: Setting } {
  const [provider = "", key = "", ...rest] = spec.split(".");
  const kind = dnsProvider(provider);
  if (!kind || rest.length > 0) {
    throw new UsageError(`${option} ${spec}: expected PROVIDER.SETTING with a DNS provider this wile knows`, {
      hint: `Providers: ${DNS_PROVIDERS.map((k) => k.name).join(", ")}; e.g. ${option} rfc2136.tsigSecret.`,
    });
  }
  const setting = kind.settings[key];
  if (!setting) {
    throw new UsageError(`${option} ${spec}: the ${kind.name} DNS provider has no setting "${key}"`, {
      hint: `Its settings: ${Object.keys(kind.settings).join(", ")}.`,
    });
  }
  return { kind, key, setting };
}

/**
 * The value of a --dns-credential, read from stdin so that it is in neither argv nor the shell's
 * history: on a terminal one line typed without echo, else everything piped in, less one final
 * newline. It must be one non-empty line.
 */
export async function readCredential(
  what: string,
  input: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin,
): Promise<string> {
  let text: string;
  if (input.isTTY) {
    process.stderr.write(`Value of ${what} (not shown), then Enter: `);
    const muted = new Writable({ write: (_chunk, _enc, done) => done() });
    const rl = createInterface({ input, output: muted, terminal: true });
    text = await new Promise<string>((resolve) => {
      rl.once("line", resolve);
      rl.once("close", () => resolve(""));
    });
    rl.close();
    process.stderr.write("\n");
  } else {
    const chunks: Buffer[] = [];
    for await (const c of input) chunks.push(Buffer.from(c as Buffer));
    text = Buffer.concat(chunks)
      .toString("utf8")
      .replace(/\r?\n$/, "");
  }
  if (text === "" || /[\r\n]/.test(text)) {
    throw new UsageError(`--dns-credential ${what}: expected one non-empty line on stdin`, {
      hint: `Pipe it in, e.g. wile config --dns-credential ${what} < /path/to/file (or type it when asked on a terminal).`,
    });
  }
  return text;
}

/** The home's DNS settings for output: secrets (and every value of a provider this wile does not know) hidden. */
export function shownDnsConfig(dns: HomeConfig["dns"]): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [provider, entry] of Object.entries(dns ?? {})) {
    const kind = dnsProvider(provider);
    out[provider] = Object.fromEntries(
      Object.entries(entry).map(([k, v]) => [k, !kind?.settings[k] || kind.settings[k].secret ? HIDDEN : v]),
    );
  }
  return out;
}

const HIDDEN = "(set, not shown)";

export const configCommand: Command = {
  name: "config",
  summary: "show or change the home's settings (notifications, heartbeat, DNS provider credentials)",
  usage:
    "wile config [--notify-cmd CMD] [--notify-url URL] [--notify-on failure|always] [--heartbeat-url URL] [--dns-credential PROVIDER.SETTING] [--unset NAME] [--test-notify]",
  description: [
    "Settings kept in <home>/config.json and used by 'wile cron'. Without options, shows them.",
    "A notification that fails is logged as a warning and never changes wile cron's exit code.",
    "--test-notify sends a test report (event 'success', nothing failed) to the configured command",
    "and URL, and fetches the heartbeat URL, so you can check them now.",
    "--dns-credential PROVIDER.SETTING stores a DNS provider's credential (e.g. rfc2136.tsigSecret) in",
    "config.json (0600) for wile issue --dns and every renewal; the value is read from stdin (typed",
    "without echo on a terminal), so it is never in argv or the shell's history, and secrets are never",
    "shown. The command line and the environment take precedence over it.",
  ].join("\n"),
  options: [
    ...NOTIFY_OPTIONS,
    {
      name: "unset",
      type: "string",
      repeat: true,
      arg: "NAME",
      help: `remove a setting: ${Object.keys(UNSETTABLE).join(", ")}, dns.PROVIDER.SETTING or dns.PROVIDER`,
    },
    { name: "test-notify", type: "boolean", help: "send a test notification and heartbeat now" },
    {
      name: "dns-credential",
      type: "string",
      arg: "PROVIDER.SETTING",
      help: "store a DNS provider's credential or setting (e.g. rfc2136.tsigSecret), its value read from stdin (never from the command line); --unset dns.PROVIDER.SETTING removes it",
    },
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
    "wile config --dns-credential rfc2136.tsigSecret < /root/tsig-secret.txt",
    "wile config --unset dns.rfc2136.tsigSecret",
  ],
  async run({ opts, out, home }) {
    const patch = configPatchFromOptions(opts);
    const emails = list(opts, "email");
    if (emails.length > 0) patch.email = parseEmails(emails);
    // The dns section: changed as a whole (the patch replaces it).
    let dns: NonNullable<HomeConfig["dns"]> | undefined;
    const dnsSection = async () => (dns ??= structuredClone((await readConfig(home)).dns ?? {}));
    const credential = str(opts, "dns-credential");
    if (credential !== undefined) {
      const { kind, key, setting } = dnsSettingOf(credential, "--dns-credential");
      const what = `${kind.name}.${key}`;
      const text = await readCredential(what);
      let value: unknown;
      try {
        value = setting.parse(text);
      } catch (e) {
        // Never quoted: it may be a secret.
        throw new UsageError(`--dns-credential ${what}: the value ${(e as Error).message}`);
      }
      const section = await dnsSection();
      section[kind.name] = { ...section[kind.name], [key]: value as DnsConfigValue };
    }
    for (const name of list(opts, "unset")) {
      if (name.startsWith("dns.")) {
        const section = await dnsSection();
        const spec = name.slice(4);
        if (!spec.includes(".") && section[spec]) delete section[spec];
        else {
          const [provider = "", key = ""] = spec.split(".");
          const entry = section[provider];
          if (!entry || !Object.hasOwn(entry, key)) {
            throw new UsageError(`--unset ${name}: not set`, { hint: "wile config shows what is set." });
          }
          delete entry[key];
          if (Object.keys(entry).length === 0) delete section[provider];
        }
        continue;
      }
      const key = UNSETTABLE[name];
      if (!key) {
        throw new UsageError(`--unset ${name}: no such setting`, {
          hint: `Settings: ${Object.keys(UNSETTABLE).join(", ")}.`,
        });
      }
      if (key in patch) throw new UsageError(`--unset ${name} and --${name} together`);
      patch[key] = undefined;
    }
    if (dns !== undefined) patch.dns = Object.keys(dns).length > 0 ? dns : undefined;
    const changing = Object.keys(patch).length > 0 || dns !== undefined;
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

    if (out.jsonMode) {
      out.json({
        ok: true,
        path: configPath(home),
        config: { ...cfg, ...(cfg.dns ? { dns: shownDnsConfig(cfg.dns) } : {}) },
      });
    } else if (!changing && !flag(opts, "test-notify")) {
      const dnsKeys = Object.entries(cfg.dns ?? {}).flatMap(([p, e]) =>
        Object.keys(e).map((k) => `dns.${p}.${k}`),
      );
      const width = Math.max(14, ...dnsKeys.map((k) => k.length));
      const row = (k: string, v: string | undefined) => `${k.padEnd(width)} ${v ?? "-"}`;
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
          ...Object.entries(shownDnsConfig(cfg.dns)).flatMap(([provider, entry]) => {
            const note = dnsProvider(provider)
              ? ""
              : "  (a DNS provider this wile does not know: kept, unused)";
            return Object.entries(entry).map(([k, v]) =>
              row(`dns.${provider}.${k}`, `${typeof v === "string" ? v : JSON.stringify(v)}${note}`),
            );
          }),
        ].join("\n"),
      );
    }
    return 0;
  },
};
