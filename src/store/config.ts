import { join } from "node:path";
import { UsageError } from "../util/errors";
import type { NotifySettings } from "../util/notify";
import { isRecord, printable } from "../util/text";
import { ensureDir, readFileIfExists, writeFileAtomic } from "./fs-safe";

/**
 * Settings of one home that outlive a single command, in `<home>/config.json` (0600):
 * notification targets for `wile cron`, the heartbeat, the schedule `install-cron` chose.
 * Certificate settings live in each certificate's renewal.json, not here.
 */
export interface HomeConfig extends NotifySettings {
  version: 1;
  /** Contact addresses for new accounts. */
  email?: string[];
  /** The schedule install-cron chose: minute, and two hours 12 h apart. Reinstalling keeps it. */
  cron?: { minute: number; hours: [number, number] };
  /**
   * DNS provider credentials and settings: provider name -> setting key -> value, e.g.
   * `{"rfc2136": {"tsigName": "k", "tsigSecret": "..."}}`; read after the command line and the
   * environment (src/dns/provider.ts readProviderSettings). Each provider checks its own entry when
   * it is used; names this wile does not know are kept (a newer wile may use them).
   */
  dns?: Record<string, Record<string, DnsConfigValue>>;
}

/** What a setting in config.json's dns section may hold. */
export type DnsConfigValue = string | number | boolean | string[];

export type ConfigPatch = { [K in Exclude<keyof HomeConfig, "version">]?: HomeConfig[K] | undefined };

export function defaultConfig(): HomeConfig {
  return { version: 1, notifyOn: "failure" };
}

export function configPath(home: string): string {
  return join(home, "config.json");
}

/** The home's config; defaults when the file does not exist; a UsageError naming the file when it is broken. */
export async function readConfig(home: string): Promise<HomeConfig> {
  const path = configPath(home);
  const text = await readFileIfExists(path);
  if (text === null) return defaultConfig();
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw broken(path, `it is not valid JSON (${printable((e as Error).message, 200)})`);
  }
  return parseConfig(raw, path);
}

/** Checks a parsed config.json; unknown keys are dropped (a newer wile may have written them). */
export function parseConfig(raw: unknown, path = "config.json"): HomeConfig {
  if (!isRecord(raw)) throw broken(path, "it is not a JSON object");
  if (raw.version !== 1)
    throw broken(
      path,
      `unsupported "version": ${printable(String(JSON.stringify(raw.version)), 40)} (expected 1)`,
    );
  const cfg = defaultConfig();
  if (raw.email !== undefined) {
    if (!Array.isArray(raw.email) || !raw.email.every((e) => typeof e === "string")) {
      throw broken(path, `"email" must be a list of strings`);
    }
    cfg.email = [...raw.email];
  }
  for (const key of ["notifyCmd", "notifyUrl", "heartbeatUrl"] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== "string" || v === "") throw broken(path, `"${key}" must be a non-empty string`);
    if (key !== "notifyCmd" && !isHttpUrl(v))
      throw broken(path, `"${key}" must be an http:// or https:// URL`);
    cfg[key] = v;
  }
  if (raw.notifyOn !== undefined) {
    if (raw.notifyOn !== "failure" && raw.notifyOn !== "always") {
      throw broken(path, `"notifyOn" must be "failure" or "always"`);
    }
    cfg.notifyOn = raw.notifyOn;
  }
  if (raw.cron !== undefined) {
    const c = raw.cron;
    const ok =
      isRecord(c) &&
      isInt(c.minute, 0, 59) &&
      Array.isArray(c.hours) &&
      c.hours.length === 2 &&
      isInt(c.hours[0], 0, 23) &&
      isInt(c.hours[1], 0, 23);
    if (!ok) throw broken(path, `"cron" must be {"minute": 0-59, "hours": [0-23, 0-23]}`);
    const hours = (c as { hours: [number, number] }).hours;
    cfg.cron = { minute: (c as { minute: number }).minute, hours: [hours[0], hours[1]] };
  }
  if (raw.dns !== undefined) cfg.dns = parseDnsSection(raw.dns, path);
  return cfg;
}

function parseDnsSection(v: unknown, path: string): Record<string, Record<string, DnsConfigValue>> {
  const shape = `"dns" must be {"<provider>": {"<setting>": "<value>", ...}, ...}`;
  if (!isRecord(v)) throw broken(path, shape);
  const out: Record<string, Record<string, DnsConfigValue>> = {};
  for (const [provider, entry] of Object.entries(v)) {
    if (!isRecord(entry)) throw broken(path, `${shape}; "dns.${printable(provider, 40)}" is not an object`);
    const settings: Record<string, DnsConfigValue> = {};
    for (const [key, value] of Object.entries(entry)) {
      const ok =
        typeof value === "string" ||
        typeof value === "boolean" ||
        (typeof value === "number" && Number.isFinite(value)) ||
        (Array.isArray(value) && value.every((x) => typeof x === "string"));
      // The value may be a secret: never quoted.
      if (!ok) {
        throw broken(
          path,
          `"dns.${printable(provider, 40)}.${printable(key, 40)}" must be a string, number, true/false or a list of strings`,
        );
      }
      settings[key] = Array.isArray(value) ? [...value] : value;
    }
    out[provider] = settings;
  }
  return out;
}

/** Writes the config atomically (0600), creating the home (0700) if needed. */
export async function writeConfig(home: string, cfg: HomeConfig): Promise<void> {
  const checked = parseConfig(cfg, configPath(home));
  await ensureDir(home);
  await writeFileAtomic(configPath(home), `${JSON.stringify(checked, null, 2)}\n`, 0o600);
}

/** Read, merge `patch` (a key set to undefined is removed), write; returns the new config. */
export async function updateConfig(home: string, patch: ConfigPatch): Promise<HomeConfig> {
  const cfg = await readConfig(home);
  const next: Record<string, unknown> = { ...cfg };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete next[k];
    else next[k] = v;
  }
  if (next.notifyOn === undefined) next.notifyOn = "failure";
  const result = parseConfig(next, configPath(home));
  await writeConfig(home, result);
  return result;
}

export function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    return false;
  }
}

function isInt(v: unknown, min: number, max: number): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

function broken(path: string, why: string): UsageError {
  return new UsageError(`${path} is broken: ${why}`, {
    hint: `Fix the file by hand (it is JSON: {"version": 1, "notifyOn": "failure", ...}), or delete it to start from the defaults (notification settings and the cron time are then forgotten).`,
  });
}
