/**
 * The file of `wile issue --batch FILE`: one certificate per line, written the way the rest of a
 * `wile issue` command line is, with the names as bare words:
 * ```
 * # comments and blank lines are ignored
 * example.com www.example.com -w /srv/www/example
 * shop.example.net -w /srv/www/shop --key-type rsa-2048 --deploy nginx
 * example.org '*.example.org' --dns exec --dns-exec /usr/local/bin/dns-hook
 * ```
 * Words are separated by blanks; '...' or "..." quote a word (no escapes inside); a word that
 * starts with # starts a comment. A word that is not an option or an option's value is a name
 * (the same as -d NAME). The options of the command line apply to every line; an option given on a
 * line replaces the command line's (all its values, for repeatable ones), and a line that says how
 * its names are proved (-w, --dns, --standalone, --stateless, --alpn, --challenge) replaces every
 * such option of the command line.
 */
import { UsageError } from "../util/errors";
import { GLOBAL_OPTIONS, type OptionSpec } from "./options";

export interface BatchLine {
  /** 1-based line number in the file. */
  line: number;
  /** The words of the line, quotes removed. */
  words: string[];
  /** Why the line cannot be read (an unclosed quote); words is empty then. */
  error?: BatchLineError;
}

/** What a line may not set: one run has one CA, one account, one output and one deadline. */
export const BATCH_WIDE = [
  "home",
  "json",
  "verbose",
  "help",
  "batch",
  "parallel",
  "timeout",
  "server",
  "staging",
  "ca-bundle",
  "eab-kid",
  "eab-hmac-key",
  "email",
];

/** The options that say how names are proved; a line with one of them replaces all of them. */
const METHODS = ["webroot", "dns", "challenge", "stateless", "standalone", "alpn"];

/** A line that cannot be read or used, with its number (collected, then reported together). */
export class BatchLineError extends UsageError {
  constructor(
    readonly line: number,
    message: string,
    hint?: string,
  ) {
    super(`line ${line}: ${message}`, hint === undefined ? {} : { hint });
  }
}

/** The certificate lines of a batch file (comments and blank lines dropped), each with its number. */
export function parseBatchFile(text: string): BatchLine[] {
  const lines: BatchLine[] = [];
  text.split("\n").forEach((raw, i) => {
    try {
      const words = splitWords(raw.replace(/\r$/, ""), i + 1);
      if (words.length > 0) lines.push({ line: i + 1, words });
    } catch (err) {
      if (!(err instanceof BatchLineError)) throw err;
      lines.push({ line: i + 1, words: [], error: err });
    }
  });
  return lines;
}

function splitWords(text: string, line: number): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /[ \t]/.test(text[i] as string)) i++;
    if (i >= text.length || text[i] === "#") break;
    let word = "";
    while (i < text.length && !/[ \t]/.test(text[i] as string)) {
      const c = text[i] as string;
      if (c === "'" || c === '"') {
        const end = text.indexOf(c, i + 1);
        if (end < 0) throw new BatchLineError(line, `the quote ${c} is not closed`);
        word += text.slice(i + 1, end);
        i = end + 1;
      } else {
        word += c;
        i++;
      }
    }
    words.push(word);
  }
  return words;
}

/** An option word and its value, as one unit of argv. */
interface Unit {
  name: string | undefined;
  words: string[];
}

/** argv cut into units: an option with its value (when it takes one and it is the next word), or a bare word. */
function units(argv: string[], specs: readonly OptionSpec[]): Unit[] {
  const byName = new Map<string, OptionSpec>();
  for (const s of [...GLOBAL_OPTIONS, ...specs]) {
    byName.set(s.name, s);
    if (s.alias) byName.set(s.alias, s);
  }
  const out: Unit[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (!/^-./.test(word)) {
      out.push({ name: undefined, words: [word] });
      continue;
    }
    const bare = word.replace(/^--?/, "");
    const spec = byName.get(bare.replace(/=.*$/, "")) ?? byName.get(bare.replace(/^no-/, ""));
    const name = spec?.name ?? bare.replace(/=.*$/, "");
    if (spec?.type === "string" && !bare.includes("=") && i + 1 < argv.length) {
      out.push({ name, words: [word, argv[i + 1] as string] });
      i++;
    } else out.push({ name, words: [word] });
  }
  return out;
}

/**
 * The argv of one line's certificate: the command line's options (`common`, without names) with
 * what the line replaces taken out, then the line's own words with each name as -d NAME.
 */
export function lineArgv(common: string[], line: BatchLine, specs: readonly OptionSpec[]): string[] {
  const own = units(line.words, specs);
  for (const u of own) {
    if (u.name !== undefined && BATCH_WIDE.includes(u.name)) {
      throw new BatchLineError(
        line.line,
        `--${u.name} applies to the whole batch, not to one line`,
        `Give --${u.name} on the command line: wile issue --batch FILE --${u.name} ...`,
      );
    }
  }
  const given = new Set(own.map((u) => u.name).filter((n) => n !== undefined));
  const hasMethod = METHODS.some((m) => given.has(m));
  const kept = units(common, specs).filter(
    (u) => u.name === undefined || !(given.has(u.name) || (hasMethod && METHODS.includes(u.name))),
  );
  return [
    ...kept.flatMap((u) => u.words),
    ...own.flatMap((u) => (u.name === undefined ? ["-d", u.words[0] as string] : u.words)),
  ];
}

/**
 * The command line of `wile issue --batch`, without --batch, --parallel and the global options:
 * what applies to every line. Names on the command line are refused (they come from the file).
 */
export function commonArgv(argv: string[], specs: readonly OptionSpec[]): string[] {
  const all = units(argv, specs);
  const stray = all.find((u) => u.name === undefined);
  if (stray) {
    throw new UsageError(`unexpected argument "${stray.words[0]}"`, {
      hint: "With --batch the names come from the file: wile issue --batch FILE -w /srv/www",
    });
  }
  if (all.some((u) => u.name === "domain")) {
    throw new UsageError("--batch takes the names from the file; -d is not allowed with it", {
      hint: "Put each certificate's names on a line of the file: example.com www.example.com -w /srv/www",
    });
  }
  const drop = ["batch", "parallel", "home", "json", "verbose"];
  return all.filter((u) => !drop.includes(u.name as string)).flatMap((u) => u.words);
}
