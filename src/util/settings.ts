/**
 * Declared settings: how a plug-in (a deploy target; DNS providers next) says once what it can be
 * told. From one declaration come the command-line options (src/cli/setting-options.ts turns
 * `--<kind>-<setting>` flags into a record), the check of that record and of what renewal.json
 * holds (the same parse() for both), the defaults, which values are local paths to make absolute
 * and which are secrets never to be shown.
 *
 * A declaration is a record of key -> Setting; the key is the field in renewal.json:
 * ```
 * const settings = {
 *   cert: path({ arg: "PATH", help: "nginx: copy the fullchain here", needs: "key" }),
 *   reloadCmd: command({ flag: "nginx-reload", arg: "CMD", help: "nginx: reload command" }),
 *   port: withDefault(integer({ arg: "N", help: "...", min: 1, max: 65535 }), 22),
 * };
 * type Config = Values<typeof settings>;   // { cert?: string; reloadCmd?: string; port: number }
 * ```
 */
import { isAbsolute } from "node:path";

export interface Setting<T = unknown> {
  /** The option's name without "--"; default `<kind>-<key in kebab-case>`. */
  flag?: string;
  /** One value (`--x V`), a repeatable one (`--x V --x W`), or a switch (`--x`). */
  input: "value" | "list" | "switch";
  /** Placeholder in help: PATH, CMD, N. */
  arg?: string;
  help: string;
  /** A password or token: never echoed in messages. */
  secret?: boolean;
  /**
   * A local path: made absolute against the directory wile was started in (renewals run from cron,
   * somewhere else); in renewal.json it must already be absolute.
   */
  path?: boolean;
  /** Meaningful only together with this other setting of the same declaration. */
  needs?: string;
  /**
   * Checks one value, from the command line (a string; a list of strings for "list"; true for a
   * switch) or from renewal.json (any JSON), and returns its normal form, which is what renewal.json
   * keeps. Throws Error with the reason, phrased to follow the setting's name: "must be ...".
   */
  parse(value: unknown): T;
  /** The value when the setting is absent. */
  fallback?: T;
  /** Must be given. */
  required?: boolean;
}

export type Settings = Record<string, Setting>;

type ValueOf<S> = S extends Setting<infer T> ? T : never;

type Always = { fallback: unknown } | { required: true };

/** The checked settings a plug-in works with: required ones and those with a fallback are always there. */
export type Values<D extends Settings> = {
  -readonly [K in keyof D as D[K] extends Always ? K : never]: ValueOf<D[K]>;
} & {
  -readonly [K in keyof D as D[K] extends Always ? never : K]?: ValueOf<D[K]>;
};

/**
 * A setting (key) or a combination (key undefined) that is wrong. The message names settings only
 * through the `name` function it was made with, so it reads right for a flag and for a field.
 */
export class SettingError extends Error {
  constructor(
    readonly key: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = "SettingError";
  }
}

/** How a message names a setting: `--nginx-cert` on the command line, `"cert"` for renewal.json. */
export type Namer = (key: string) => string;

/**
 * Checks `raw` (a renewal.json entry, or what the command line gave) against `decl`: every value
 * through its parse(), fallbacks filled in, `needs` enforced. Keys that are not declared are
 * ignored (a newer wile may have written them). Returns the values, and the normal form of what was
 * given (without fallbacks) to store. Throws SettingError.
 */
export function readSettings<D extends Settings>(
  decl: D,
  raw: Record<string, unknown>,
  name: Namer,
): { values: Values<D>; stored: Record<string, unknown> } {
  const values: Record<string, unknown> = {};
  const stored: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(decl)) {
    const v = raw[key];
    if (v === undefined) {
      if (setting.required) throw new SettingError(key, "is missing");
      if (setting.fallback !== undefined) values[key] = setting.fallback;
      continue;
    }
    try {
      values[key] = setting.parse(v);
    } catch (err) {
      throw new SettingError(key, (err as Error).message);
    }
    stored[key] = values[key];
  }
  for (const [key, setting] of Object.entries(decl)) {
    // A switch set to false is as good as absent.
    const given = stored[key] !== undefined && stored[key] !== false;
    if (setting.needs !== undefined && given && stored[setting.needs] === undefined) {
      throw new SettingError(undefined, `${name(key)} goes with ${name(setting.needs)}`);
    }
  }
  return { values: values as Values<D>, stored };
}

/**
 * readSettings, then the plug-in's own check across settings (`check`; an Error it throws that is
 * not a SettingError becomes one about the whole). Deploy targets and DNS providers read this way.
 */
export function readChecked<D extends Settings>(
  decl: D,
  check: ((c: Values<D>, name: Namer) => void) | undefined,
  raw: Record<string, unknown>,
  name: Namer,
): { values: Values<D>; stored: Record<string, unknown> } {
  const r = readSettings(decl, raw, name);
  try {
    check?.(r.values, name);
  } catch (err) {
    if (err instanceof SettingError) throw err;
    throw new SettingError(undefined, (err as Error).message);
  }
  return r;
}

// -----------------------------------------------------------------------------------------------
// The kinds of setting

type Common = Pick<Setting, "flag" | "arg" | "help" | "secret" | "needs">;

/** A setting with a value used when it is absent. */
export function withDefault<T>(setting: Setting<T>, fallback: T): Setting<T> & { fallback: T } {
  return { ...setting, fallback };
}

/** A setting that must be given. */
export function required<T>(setting: Setting<T>): Setting<T> & { required: true } {
  return { ...setting, required: true };
}

function oneString(v: unknown): string {
  if (typeof v !== "string" || v.trim() === "") throw new Error("must be a non-empty string");
  if (v.includes("\0")) throw new Error("must not contain a NUL byte");
  return v;
}

/** A string; `check` returns why a value is wrong ("must be ..."), or undefined. */
export function text(o: Common & { check?: (v: string) => string | undefined }): Setting<string> {
  return {
    ...o,
    input: "value",
    parse(v) {
      const s = oneString(v);
      const why = o.check?.(s);
      if (why) throw new Error(why);
      return s;
    },
  };
}

/** A command the operator wrote, run with sh -c. */
export function command(o: Common): Setting<string> {
  return text(o);
}

/** A local file or directory: absolute (made so on the command line). */
export function path(o: Common): Setting<string> {
  return {
    ...o,
    input: "value",
    path: true,
    parse(v) {
      const s = oneString(v);
      if (!isAbsolute(s)) throw new Error("must be an absolute path");
      return s;
    },
  };
}

/** Repeatable strings, each checked by `check`; absent means an empty list. */
export function texts(
  o: Common & { check?: (v: string) => string | undefined },
): Setting<string[]> & { fallback: string[] } {
  return {
    ...o,
    input: "list",
    fallback: [],
    parse(v) {
      const list = typeof v === "string" ? [v] : v;
      if (!Array.isArray(list)) throw new Error("must be a list of strings");
      return list.map((item) => {
        if (typeof item !== "string" || item === "") throw new Error("must be a list of non-empty strings");
        const why = o.check?.(item);
        if (why) throw new Error(`${JSON.stringify(item)} ${why}`);
        return item;
      });
    },
  };
}

/** A switch: true when given, false otherwise. */
export function flag(o: Common): Setting<boolean> & { fallback: boolean } {
  return {
    ...o,
    input: "switch",
    fallback: false,
    parse(v) {
      if (typeof v !== "boolean") throw new Error("must be true or false");
      return v;
    },
  };
}

/** A whole number from `min` to `max` (a number in renewal.json, digits on the command line). */
export function integer(o: Common & { min: number; max: number; what?: string }): Setting<number> {
  return {
    ...o,
    input: "value",
    parse(v) {
      const n = typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v.trim()) : v;
      if (typeof n !== "number" || !Number.isInteger(n) || n < o.min || n > o.max) {
        throw new Error(`must be ${o.what ?? "a whole number"} from ${o.min} to ${o.max}`);
      }
      return n;
    },
  };
}

/** A port number. */
export function port(o: Common): Setting<number> {
  return integer({ ...o, min: 1, max: 65535, what: "a port number" });
}

/** `nginxReload` -> `nginx-reload`. */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The most a command may be given to run (an hour). */
export const MAX_COMMAND_TIMEOUT_S = 3600;

/** How long a command may run, in whole seconds; `what` starts the help ("exec: kill the command"). */
export function commandTimeout(o: {
  flag?: string;
  what: string;
  fallback: number;
}): Setting<number> & { fallback: number } {
  return withDefault(
    integer({
      flag: o.flag,
      arg: "SECONDS",
      help: `${o.what} after this long (default ${o.fallback}, at most ${MAX_COMMAND_TIMEOUT_S})`,
      min: 1,
      max: MAX_COMMAND_TIMEOUT_S,
      what: "whole seconds",
    }),
    o.fallback,
  );
}
