import minimist from "minimist";
import { UsageError } from "../util/errors";

/** One command-line option. The tables below are the single source for parsing and for --help. */
export interface OptionSpec {
  name: string;
  alias?: string;
  type: "string" | "boolean";
  /** May be given several times (collected into an array). */
  repeat?: boolean;
  /** Placeholder shown in help, e.g. NAME. */
  arg?: string;
  help: string;
  /** For booleans that are on unless --no-<name>. */
  defaultTrue?: boolean;
}

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: "home", type: "string", arg: "DIR", help: "state directory (default: $WILE_HOME, else ~/.wile)" },
  { name: "json", type: "boolean", help: "print one JSON result document on stdout" },
  { name: "verbose", alias: "v", type: "boolean", help: "more detail, and stack traces on errors" },
  { name: "help", alias: "h", type: "boolean", help: "show help for the command" },
];

export type ParsedOptions = {
  _: string[];
  [name: string]: string | string[] | boolean | undefined | string[];
};

/**
 * Parses argv against a table with minimist, then checks what minimist does not: unknown options,
 * a value given twice for a single-valued option, a missing value.
 */
export function parseOptions(argv: string[], specs: OptionSpec[]): ParsedOptions {
  const all = [...GLOBAL_OPTIONS, ...specs];
  const byName = optionsByName(all);
  const unknown: string[] = [];
  const args = minimist(valuesAttached(argv, byName), {
    string: all.filter((s) => s.type === "string").map((s) => s.name),
    boolean: all.filter((s) => s.type === "boolean").map((s) => s.name),
    alias: Object.fromEntries(all.filter((s) => s.alias).map((s) => [s.alias as string, s.name])),
    default: Object.fromEntries(all.filter((s) => s.defaultTrue).map((s) => [s.name, true])),
    unknown: (arg) => {
      if (arg.startsWith("-") && arg !== "-") {
        const name = arg.replace(/^--?(no-)?/, "").replace(/=.*$/, "");
        if (!byName.has(name)) unknown.push(arg.replace(/=.*$/, ""));
      }
      return true;
    },
  });
  if (unknown.length > 0) {
    throw new UsageError(`unknown option ${unknown[0]}`, {
      hint: "See --help for the options of this command.",
    });
  }
  const out: ParsedOptions = { _: args._.map(String) };
  for (const s of all) {
    let v = args[s.name] as unknown;
    if (v === undefined) continue;
    if (s.type === "string") {
      const list = (Array.isArray(v) ? v : [v]).map(String);
      if (list.some((x) => x === "")) {
        throw new UsageError(`--${s.name} needs a value${s.arg ? ` (${s.arg})` : ""}`);
      }
      if (!s.repeat && list.length > 1) throw new UsageError(`--${s.name} was given more than once`);
      v = s.repeat ? list : list[0];
    } else if (Array.isArray(v)) {
      v = v[v.length - 1];
    }
    out[s.name] = v as string | string[] | boolean;
  }
  return out;
}

function optionsByName(all: readonly OptionSpec[]): Map<string, OptionSpec> {
  const byName = new Map<string, OptionSpec>();
  for (const s of all) {
    byName.set(s.name, s);
    if (s.alias) byName.set(s.alias, s);
  }
  return byName;
}

/**
 * argv with every value that starts with "-" attached to its option (`--eab-hmac-key=-dXYZ`), as
 * parseOptions reads it: what reads argv itself (pairNamesWithWebroots) must not take such a value
 * for an option of its own (`-dXYZ` is not a -d).
 */
export function withValuesAttached(argv: string[], specs: readonly OptionSpec[]): string[] {
  return valuesAttached(argv, optionsByName([...GLOBAL_OPTIONS, ...specs]));
}

/**
 * An option that takes a value takes the next word even when it starts with "-" (an EAB HMAC key
 * or a password in base64url may), as getopt does, unless that word is itself an option of this
 * command (`-d -w /srv` still says that -d needs a value). minimist alone would read such a value
 * as an option; written as `--name=value` it cannot.
 */
function valuesAttached(argv: string[], byName: Map<string, OptionSpec>): string[] {
  const out: string[] = [];
  const known = (word: string) => byName.has(word.replace(/^--?(no-)?/, "").replace(/=.*$/, ""));
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const spec = /^--?[^=]+$/.test(word) ? byName.get(word.replace(/^--?/, "")) : undefined;
    const next = argv[i + 1];
    if (spec?.type === "string" && next !== undefined && /^-./.test(next) && next !== "--" && !known(next)) {
      out.push(`--${spec.name}=${next}`);
      i++;
    } else out.push(word);
  }
  return out;
}

export function str(opts: ParsedOptions, name: string): string | undefined {
  const v = opts[name];
  return typeof v === "string" ? v : undefined;
}

export function list(opts: ParsedOptions, name: string): string[] {
  const v = opts[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

export function flag(opts: ParsedOptions, name: string): boolean {
  return opts[name] === true;
}

/** How a -d name is proved: the webroot of a -w (or none given), or the DNS provider of a --dns. */
export interface NamePair {
  name: string;
  webroot: string | undefined;
  /** The --dns PROVIDER that applies to the name instead of a webroot. */
  dns?: string;
  /** The --challenge TYPE (dns-persist-01) that applies to the name instead of a webroot. */
  challenge?: string;
  /** --stateless applies to the name: the web server answers from the account thumbprint. */
  stateless?: true;
  /** --standalone applies to the name: wile's own http-01 listener instead of a webroot. */
  standalone?: true;
  /** --alpn applies to the name: tls-alpn-01 through wile's own TLS listener. */
  alpn?: true;
}

/**
 * Which webroot (-w DIR), DNS provider (--dns PROVIDER), persistent record (--challenge
 * dns-persist-01), stateless web server (--stateless, no value), wile's own listener
 * (--standalone, no value) or TLS listener (--alpn, no value) proves which -d name, from the order
 * on the command line (minimist loses it). -w, --dns, --challenge, --stateless, --standalone and
 * --alpn are read alike, as "the method":
 * - a line that starts with a method is read as certbot does: it applies to the -d names after it,
 *   `-w /srv/a -d a.example --dns exec -d b.example`;
 * - a line that starts with -d is read as acme.sh does: a method applies to the -d names before it
 *   (back to the previous method), `-d a.example -w /srv/a -d b.example --dns exec`; names after
 *   the last method take the last one.
 * Returns the pairs in order; webroot is undefined (and dns absent) when no method was given at all.
 */
export function pairNamesWithWebroots(argv: string[]): NamePair[] {
  type Method =
    | { webroot: string }
    | { dns: string }
    | { challenge: string }
    | { stateless: true }
    | { standalone: true }
    | { alpn: true };
  const tokens: Array<{ kind: "d"; value: string } | { kind: "m"; method: Method }> = [];
  const take = (i: number, token: string, short: string, long: string): [string | undefined, number] => {
    if (token === short || token === long) return [argv[i + 1], i + 1];
    if (token.startsWith(`${long}=`)) return [token.slice(long.length + 1), i];
    if (token.startsWith(short) && token.length > short.length && !token.startsWith("--")) {
      return [token.slice(short.length).replace(/^=/, ""), i];
    }
    return [undefined, i];
  };
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === "--") break;
    if (token === "--stateless" || token === "--standalone") {
      tokens.push({
        kind: "m",
        method: token === "--stateless" ? { stateless: true } : { standalone: true },
      });
      continue;
    }
    const [name, ni] = take(i, token, "-d", "--domain");
    if (name !== undefined) {
      tokens.push({ kind: "d", value: name });
      i = ni;
      continue;
    }
    const [webroot, wi] = take(i, token, "-w", "--webroot");
    if (webroot !== undefined) {
      tokens.push({ kind: "m", method: { webroot } });
      i = wi;
      continue;
    }
    const [dns, di] = take(i, token, "--dns", "--dns");
    if (dns !== undefined) {
      tokens.push({ kind: "m", method: { dns } });
      i = di;
      continue;
    }
    if (token === "--alpn") {
      tokens.push({ kind: "m", method: { alpn: true } });
      continue;
    }
    const [challenge, ci] = take(i, token, "--challenge", "--challenge");
    if (challenge !== undefined) {
      tokens.push({ kind: "m", method: { challenge } });
      i = ci;
    }
  }
  const pair = (name: string, m: Method | undefined): NamePair =>
    m && "dns" in m
      ? { name, webroot: undefined, dns: m.dns }
      : m && "challenge" in m
        ? { name, webroot: undefined, challenge: m.challenge }
        : m && "stateless" in m
          ? { name, webroot: undefined, stateless: true }
          : m && "standalone" in m
            ? { name, webroot: undefined, standalone: true }
            : m && "alpn" in m
              ? { name, webroot: undefined, alpn: true }
              : { name, webroot: m && "webroot" in m ? m.webroot : undefined };
  if (tokens[0]?.kind === "m") {
    let current: Method | undefined;
    const pairs: NamePair[] = [];
    for (const t of tokens) {
      if (t.kind === "m") current = t.method;
      else pairs.push(pair(t.value, current));
    }
    return pairs;
  }
  const methods: Array<Method | undefined> = [];
  let waiting: number[] = [];
  let last: Method | undefined;
  const names: string[] = [];
  for (const t of tokens) {
    if (t.kind === "d") {
      waiting.push(names.length);
      names.push(t.value);
      methods.push(undefined);
    } else {
      for (const i of waiting) methods[i] = t.method;
      waiting = [];
      last = t.method;
    }
  }
  for (const i of waiting) methods[i] = last;
  return names.map((n, i) => pair(n, methods[i]));
}
