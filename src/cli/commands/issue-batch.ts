import { readFile } from "node:fs/promises";
import { ensureAccount } from "../../flow/account";
import { type BatchItem, type BatchResult, issueBatch } from "../../flow/batch";
import { ClientPool } from "../../flow/client";
import { mapLimit } from "../../renew/run";
import { DEFAULT_ACCOUNT } from "../../store/accounts";
import { readConfig } from "../../store/config";
import type { RenewalConfig } from "../../store/renewal";
import { UsageError } from "../../util/errors";
import { BatchLineError, commonArgv, lineArgv, parseBatchFile } from "../batch-file";
import type { CommandContext } from "../command";
import { flag, type OptionSpec, type ParsedOptions, parseOptions, str } from "../options";
import { parseParallel, parseTimeout, prefixed } from "./renew";

export const BATCH_OPTIONS: OptionSpec[] = [
  {
    name: "batch",
    type: "string",
    arg: "FILE",
    help: "issue one certificate per line of FILE (- reads stdin): its names, then options as on this command line, which apply to every line unless the line gives its own; # comments; lines issued and not due are skipped (docs/batch.md)",
  },
  {
    name: "parallel",
    type: "string",
    arg: "N",
    help: "--batch: issue up to N certificates at once (default 8, at most 64)",
  },
];

/** --parallel's default for --batch: enough to keep a CA's round trips overlapped, few enough for any CA. */
export const BATCH_PARALLEL = 8;
/** A batch file larger than this is refused (a thousand lines are about 100 KB). */
const MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Bad lines listed in the error at most (the count says how many more). */
const MAX_LISTED = 20;

/** Makes a certificate's settings from one line's argv (buildConfig of wile issue). */
export type ConfigFor = (
  argv: string[],
  opts: ParsedOptions,
) => Promise<{ cfg: RenewalConfig; eab: { kid: string; hmacKey: Uint8Array } | undefined }>;

/**
 * `wile issue --batch FILE`: every line checked first (a bad one is exit 2 and nothing is
 * contacted), then one account and one client for the whole run, the lines issued `--parallel` at
 * a time (src/flow/batch.ts), one result per line and a summary. Exit 0 when every line was
 * issued or skipped, 1 when any failed.
 */
export async function runBatch(
  ctx: CommandContext,
  specs: OptionSpec[],
  configFor: ConfigFor,
): Promise<number> {
  const { out, home } = ctx;
  const file = str(ctx.opts, "batch") as string;
  const parallel =
    str(ctx.opts, "parallel") === undefined ? BATCH_PARALLEL : parseParallel(str(ctx.opts, "parallel"));
  const timeoutMs = parseTimeout(str(ctx.opts, "timeout"));
  const common = commonArgv(ctx.argv, specs);
  const where = file === "-" ? "stdin" : file;
  const lines = parseBatchFile(await readBatchFile(file));
  if (lines.length === 0) {
    throw new UsageError(`${where} has no certificate lines (only blank lines and comments)`, {
      hint: "One certificate per line: its names, then its options, e.g. example.com www.example.com -w /srv/www",
    });
  }
  // Each line as wile issue would check it (webroot, key type, DNS provider settings, ...), a few
  // at a time (the checks read files); then the certificate names must be distinct.
  const checked = await mapLimit(lines, 16, async (line) => {
    try {
      if (line.error) throw line.error;
      const argv = lineArgv(common, line, specs);
      const opts = parseOptions(argv, specs);
      const made = await configFor(argv, opts);
      return { item: { line: line.line, cfg: made.cfg, force: flag(opts, "force") }, eab: made.eab };
    } catch (err) {
      if (err instanceof BatchLineError) return { error: err };
      if (err instanceof UsageError) return { error: new BatchLineError(line.line, err.message, err.hint) };
      throw err;
    }
  });
  const items: BatchItem[] = [];
  const bad: UsageError[] = [];
  const lineOf = new Map<string, number>();
  for (const c of checked) {
    if (c.error) {
      bad.push(c.error);
      continue;
    }
    const { item } = c;
    const first = lineOf.get(item.cfg.name);
    if (first !== undefined) {
      bad.push(
        new BatchLineError(
          item.line,
          `${item.cfg.name} is already the certificate of line ${first}`,
          "A certificate is named after its first name: give each line its own first name, or join the lines.",
        ),
      );
      continue;
    }
    lineOf.set(item.cfg.name, item.line);
    items.push(item);
  }
  // EAB comes from the command line only, so every line has the same.
  const eab = checked.find((c) => c.eab)?.eab;
  if (bad.length > 0) {
    const listed = bad.slice(0, MAX_LISTED).map((e) => `  ${e.message.split("\n").join("\n    ")}`);
    const more = bad.length > MAX_LISTED ? [`  (and ${bad.length - MAX_LISTED} more)`] : [];
    throw new UsageError(
      `${bad.length} of the ${lines.length} certificate lines of ${where} cannot be used; nothing was contacted:\n${[...listed, ...more].join("\n")}`,
      { hint: `Fix those lines and run again.${bad[0]?.hint ? ` For the first: ${bad[0].hint}` : ""}` },
    );
  }

  const first = (items[0] as BatchItem).cfg;
  // The default contact set at install time (install.sh --email, wile config --email).
  const email = first.email.length > 0 ? first.email : ((await readConfig(home)).email ?? []);
  for (const item of items) item.cfg.email = email;
  const pool = new ClientPool(out.logger);
  const counts = { issued: 0, skipped: 0, failed: 0 };
  let retryAfter: string | undefined;
  try {
    const client = await pool.get(first.server, first.caBundle);
    // Once, before the lines run at the same time: a new account is registered by one of them only.
    await ensureAccount(
      client.withDeadline(timeoutMs),
      { home, directoryUrl: first.server, account: DEFAULT_ACCOUNT, email, eab },
      out.logger,
    );
    out.logger.info(`${items.length} certificates from ${where}, up to ${parallel} at a time`);
    await issueBatch(items, {
      home,
      loggerFor: (item) => prefixed(out.quiet, item.cfg.name),
      client,
      parallel,
      timeoutMs,
      verifyWaitMs: ctx.verifyWaitMs,
      onResult: (r) => {
        counts[r.status]++;
        if (r.retryAfter && (!retryAfter || r.retryAfter > retryAfter)) retryAfter = r.retryAfter;
        report(ctx, r);
      },
    });
  } finally {
    await pool.close();
  }
  const summary = `${items.length} certificates: ${counts.issued} issued, ${counts.skipped} skipped (not due), ${counts.failed} failed${retryAfter ? ` (the CA's rate limit: new orders again after ${retryAfter})` : ""}`;
  if (out.jsonMode) out.print(JSON.stringify({ summary, ...counts, ...(retryAfter ? { retryAfter } : {}) }));
  else out.print(summary);
  return counts.failed > 0 ? 1 : 0;
}

/** One line's result: a JSON line (--json) or a line for people on stdout; a failure in full on stderr. */
function report(ctx: CommandContext, r: BatchResult): void {
  const { out } = ctx;
  if (r.status === "failed") out.error(`line ${r.line} (${r.name}): ${r.reason}`, r.hint);
  if (out.jsonMode) {
    out.print(JSON.stringify(r));
    return;
  }
  const detail =
    r.status === "issued"
      ? `serial ${r.serial}, valid until ${r.notAfter}`
      : r.deployError !== undefined
        ? `issued serial ${r.serial}, but the deploy failed (cron deploys it again)`
        : oneLine(r.reason ?? "");
  out.print(`${r.status.padEnd(7)} line ${r.line} ${r.name}: ${detail}`);
}

async function readBatchFile(file: string): Promise<string> {
  let data: Buffer;
  try {
    data = file === "-" ? await readStdin() : await readFile(file);
  } catch (err) {
    throw new UsageError(
      `cannot read the batch file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { hint: "Give a readable file, or - to read the lines from stdin." },
    );
  }
  if (data.length > MAX_FILE_BYTES) {
    throw new UsageError(
      `the batch file ${file === "-" ? "on stdin" : file} is over ${MAX_FILE_BYTES >> 20} MB`,
      {
        hint: "Split it into several files and run wile issue --batch on each.",
      },
    );
  }
  return data.toString("utf8");
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > MAX_FILE_BYTES) break;
  }
  return Buffer.concat(chunks);
}

/** A reason on one line of at most 300 characters (the full text goes to stderr). */
function oneLine(text: string): string {
  const flat = text.replace(/\s*\n\s*/g, " ");
  return flat.length > 300 ? `${flat.slice(0, 299)}…` : flat;
}
