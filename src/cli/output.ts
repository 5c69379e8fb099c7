import type { Logger } from "../util/log";

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
  logger: Logger;
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
  const colour = io.stderrIsTTY && env.NO_COLOR === undefined && env.TERM !== "dumb";
  const paint = (code: string, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const line = (s: string) => io.stderr.write(`${s}\n`);
  return {
    jsonMode: opts.json,
    verbose: opts.verbose,
    logger: {
      info: (m) => line(m),
      warn: (m) => line(`${paint("33", "warning:")} ${m}`),
      debug: (m) => {
        if (opts.verbose) line(paint("2", m));
      },
    },
    print: (text) => io.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
    json: (doc) => io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`),
    error: (message, hint) => {
      line(`${paint("31", "error:")} ${message}`);
      if (hint) line(`${paint("36", "hint:")} ${hint}`);
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
