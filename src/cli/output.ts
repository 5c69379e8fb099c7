import type { Logger } from "../util/log";
import { type FileLog, teeLogger } from "../util/logfile";

/** Where a command writes: the process streams in production, buffers in tests. */
export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** stderr is a terminal (colour, progress). */
  stderrIsTTY: boolean;
  /** stdout is a terminal (tables vs. plain lines). */
  stdoutIsTTY: boolean;
}

export interface Output {
  /** Progress on stderr (and in the log file once one is attached). */
  readonly logger: Logger;
  /**
   * Progress for runs nobody watches (cron): the log file always, stderr only with -v, so that
   * cron mails nothing when all is well.
   */
  readonly quiet: Logger;
  /** From now on, also write progress and errors to this log file. */
  attachLog(log: FileLog): void;
  /** Result text for humans, on stdout. */
  print(text: string): void;
  /** The one JSON result document, on stdout. */
  json(doc: unknown): void;
  /** An error, on stderr. */
  error(message: string, hint?: string): void;
  readonly jsonMode: boolean;
  readonly verbose: boolean;
}

export function createOutput(
  io: Io,
  env: Record<string, string | undefined>,
  opts: { json: boolean; verbose: boolean },
): Output {
  // Asked when the first line is painted: process.stderr is made only for a command that writes to it.
  let colour: boolean | undefined;
  const paint = (code: string, s: string) => {
    if (colour === undefined) colour = io.stderrIsTTY && env.NO_COLOR === undefined && env.TERM !== "dumb";
    return colour ? `\x1b[${code}m${s}\x1b[0m` : s;
  };
  const line = (s: string) => io.stderr.write(`${s}\n`);
  const debug = (m: string) => {
    if (opts.verbose) line(paint("2", m));
  };
  const stderr: Logger = {
    info: (m) => line(m),
    warn: (m) => line(`${paint("33", "warning:")} ${m}`),
    debug,
  };
  const verboseOnly: Logger = { info: debug, warn: (m) => debug(`warning: ${m}`), debug };
  let file: FileLog | undefined;
  let logger = stderr;
  let quiet = verboseOnly;
  return {
    jsonMode: opts.json,
    verbose: opts.verbose,
    get logger() {
      return logger;
    },
    get quiet() {
      return quiet;
    },
    attachLog(log) {
      file = log;
      logger = teeLogger(stderr, log);
      quiet = teeLogger(verboseOnly, log);
    },
    print: (text) => io.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
    json: (doc) => io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`),
    error: (message, hint) => {
      line(`${paint("31", "error:")} ${message}`);
      if (hint) line(`${paint("36", "hint:")} ${hint}`);
      file?.error(hint ? `${message} (hint: ${hint})` : message);
    },
  };
}

/** Lays out rows as aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)].join("\n");
}
