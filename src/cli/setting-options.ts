/**
 * The one adapter from declared settings (src/util/settings.ts) to the command line: the option
 * table and help lines come from the declaration, and `--<prefix>-<setting>` flags become the raw
 * record that the declaration's own check reads, exactly as it reads renewal.json. The only thing
 * done here and not there: a local path is made absolute against the current directory.
 */
import { resolve } from "node:path";
import { UsageError } from "../util/errors";
import { kebab, type Namer, type Setting, type SettingError, type Settings } from "../util/settings";
import { printable } from "../util/text";
import { list, type OptionSpec, type ParsedOptions } from "./options";

/** The option a setting is given with: its `flag`, else `<prefix>-<key in kebab-case>`. */
export function flagName(prefix: string, key: string, setting: Setting): string {
  return setting.flag ?? `${prefix}-${kebab(key)}`;
}

/** The options of a declaration, in its order. */
export function settingOptions(prefix: string, decl: Settings): OptionSpec[] {
  return Object.entries(decl)
    .filter(([, s]) => s.cli !== false)
    .map(([key, s]) => ({
      name: flagName(prefix, key, s),
      type: s.input === "switch" ? "boolean" : "string",
      ...(s.input === "list" ? { repeat: true } : {}),
      ...(s.arg ? { arg: s.arg } : {}),
      help: s.help,
    }));
}

/** Whether the command line gave this setting (minimist reports an absent switch as false). */
export function isGiven(opts: ParsedOptions, prefix: string, key: string, setting: Setting): boolean {
  if (setting.cli === false) return false;
  const v = opts[flagName(prefix, key, setting)];
  return setting.input === "switch" ? v === true : v !== undefined;
}

/** What the command line gave for `decl`, by setting key; paths made absolute. */
export function givenSettings(
  prefix: string,
  decl: Settings,
  opts: ParsedOptions,
  cwd: string = process.cwd(),
): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(decl)) {
    if (!isGiven(opts, prefix, key, s)) continue;
    const name = flagName(prefix, key, s);
    if (s.input === "switch") raw[key] = true;
    else if (s.input === "list") raw[key] = list(opts, name);
    else {
      const v = opts[name] as string;
      raw[key] = s.path && v.trim() !== "" && !v.includes("\0") ? resolve(cwd, v) : v;
    }
  }
  return raw;
}

/** How messages about the command line name a setting: `--nginx-cert`. */
export function flagNamer(prefix: string, decl: Settings): Namer {
  return (key) => {
    const s = decl[key];
    if (s?.cli === false) return `${prefix}.${key}`;
    return s ? `--${flagName(prefix, key, s)}` : key;
  };
}

/**
 * A SettingError about what the command line gave, as a UsageError: "--ssh-port 99999: must be a
 * port number from 1 to 65535", "--deploy command needs --deploy-cmd CMD", "--deploy nginx:
 * --nginx-cert goes with --nginx-key". `subject` is how the whole is named ("--deploy nginx").
 */
export function settingUsageError(
  err: SettingError,
  subject: string,
  prefix: string,
  decl: Settings,
  raw: Record<string, unknown>,
  hint: string,
): UsageError {
  const s = err.key === undefined ? undefined : decl[err.key];
  if (err.key === undefined || !s) return new UsageError(`${subject}: ${err.message}`, { hint });
  const v = raw[err.key];
  // Set only in the environment or the home's config: named as config.json's dns section does.
  if (s.cli === false) return new UsageError(`${subject}: ${prefix}.${err.key} ${err.message}`, { hint });
  const flag = `--${flagName(prefix, err.key, s)}`;
  if (v === undefined && err.message !== "is missing") {
    return new UsageError(`${flag} (from the environment or the home's config): ${err.message}`, { hint });
  }
  if (v === undefined) return new UsageError(`${subject} needs ${flag}${s.arg ? ` ${s.arg}` : ""}`, { hint });
  const shown = s.secret || s.input !== "value" ? "" : ` ${JSON.stringify(printable(String(v), 100))}`;
  return new UsageError(`${flag}${shown}: ${err.message}`, { hint });
}
