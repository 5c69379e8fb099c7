import { lstat, readdir, readFile, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../util/log";
import { isRecord } from "../util/text";
import { readFileIfExists, writeFileAtomic } from "./fs-safe";
import { acquireLock } from "./lock";
import { homeLayout } from "./paths";

/**
 * What wile has put into webroots and not removed yet, per certificate, so that a run killed with
 * -9 while the CA validates leaves no challenge file behind for good:
 * ```
 * <home>/certs/<name>/webroot-files.json
 *   {"version": 1, "files": [{"path": "<webroot>/.well-known/acme-challenge/<token>", "content": "..."}],
 *    "dirs": ["<webroot>/.well-known", ...]}       directories wile created
 * ```
 * The record is written (atomically) before a file or directory is created and after it is
 * removed. The next run that holds the certificate's lock removes what a dead run recorded:
 * a file only while it is still a regular file with the content wile wrote, a directory only when
 * it is empty; nothing else, ever.
 */
export function journalPath(home: string, name: string): string {
  return join(homeLayout(home).certs, name, "webroot-files.json");
}

interface Record_ {
  files: { path: string; content: string }[];
  dirs: string[];
}

/**
 * A record kept in `file` while a run has things to undo: each change is written atomically (0600),
 * one after the other; the file is removed once the record is empty.
 */
export class JournalFile<R> {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly rec: R,
    private readonly isEmpty: (rec: R) => boolean,
  ) {}

  change(edit: (rec: R) => void): Promise<void> {
    const next = this.queue.then(async () => {
      edit(this.rec);
      if (this.isEmpty(this.rec)) await unlink(this.file).catch(() => {});
      else await writeFileAtomic(this.file, `${JSON.stringify({ version: 1, ...this.rec })}\n`, 0o600);
    });
    this.queue = next.catch(() => {});
    return next;
  }
}

/** The record of one run; the caller holds the certificate's lock. Writes are serialized. */
export class WebrootJournal {
  private readonly journal: JournalFile<Record_>;

  constructor(file: string) {
    this.journal = new JournalFile<Record_>(
      file,
      { files: [], dirs: [] },
      (r) => r.files.length === 0 && r.dirs.length === 0,
    );
  }

  addFile(path: string, content: string): Promise<void> {
    return this.journal.change((r) => r.files.push({ path, content }));
  }

  removeFile(path: string): Promise<void> {
    return this.journal.change((r) => {
      r.files = r.files.filter((f) => f.path !== path);
    });
  }

  addDir(path: string): Promise<void> {
    return this.journal.change((r) => r.dirs.push(path));
  }

  removeDir(path: string): Promise<void> {
    return this.journal.change((r) => {
      r.dirs = r.dirs.filter((d) => d !== path);
    });
  }
}

/**
 * A journal a dead run left (JournalFile), checked by `parse`; null when there is none. A file that
 * does not parse is removed with a warning (nothing it names is touched).
 */
export async function readJournal<R>(
  file: string,
  parse: (v: unknown) => R,
  logger: Logger,
): Promise<R | null> {
  try {
    const text = await readFileIfExists(file);
    return text === null ? null : parse(JSON.parse(text));
  } catch (e) {
    logger.warn(`${file} is unreadable (${(e as Error).message}); removing it, nothing else.`);
    await unlink(file).catch(() => {});
    return null;
  }
}

/**
 * Removes what a dead run recorded in `file` (see WebrootJournal), then the record. The caller
 * holds the certificate's lock. Returns the paths removed. Never throws: what cannot be removed
 * is logged and stays recorded for the next run.
 */
export async function removeLeftovers(file: string, logger: Logger): Promise<string[]> {
  const rec = await readJournal(file, parseRecord, logger);
  if (!rec) return [];
  const removed: string[] = [];
  const kept: Record_ = { files: [], dirs: [] };
  for (const f of rec.files) {
    try {
      const st = await lstat(f.path);
      // Only a regular file still holding what wile wrote: anything else is not ours.
      if (!st.isFile() || (await readFile(f.path, "utf8")) !== f.content) continue;
      await unlink(f.path);
      removed.push(f.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      logger.warn(`Could not remove ${f.path}, left by an interrupted run: ${(e as Error).message}`);
      kept.files.push(f);
    }
  }
  // Deepest first; a directory that holds anything stays.
  for (const dir of [...rec.dirs].sort((a, b) => b.length - a.length)) {
    try {
      if (!(await lstat(dir)).isDirectory()) continue;
      await rmdir(dir);
      removed.push(dir);
    } catch {}
  }
  if (removed.length > 0)
    logger.info(`removed what an interrupted run left in webroots: ${removed.join(", ")}`);
  if (kept.files.length > 0) {
    await writeFileAtomic(file, `${JSON.stringify({ version: 1, ...kept })}\n`, 0o600).catch(() => {});
  } else {
    await unlink(file).catch(() => {});
  }
  return removed;
}

/** Another kind of leftover record in a certificate's directory (DNS records: src/flow/dns-leftovers.ts). */
export interface LeftoverKind {
  /** The record's file name in certs/<name>/. */
  file: string;
  remove(file: string, logger: Logger): Promise<unknown>;
}

/** The record files of every kind of leftover (webroot files, and `more`). */
export function leftoverKinds(more: LeftoverKind[] = []): LeftoverKind[] {
  return [{ file: "webroot-files.json", remove: removeLeftovers }, ...more];
}

/**
 * removeLeftovers (and each of `more`) for every certificate directory of the home that has a
 * record (or only those of `only`: a run over every certificate with the index of cron-index.ts
 * looks only where something changed since the last run, which a new record is), each under the
 * certificate's lock; a certificate locked by a live run is skipped (its files and records are in use).
 */
export async function sweepLeftovers(
  home: string,
  logger: Logger,
  more: LeftoverKind[] = [],
  only?: string[],
): Promise<void> {
  const certs = homeLayout(home).certs;
  const kinds = leftoverKinds(more);
  const names = only ?? (await readdir(certs).catch(() => [] as string[]));
  for (const name of names) {
    const found: { kind: LeftoverKind; file: string }[] = [];
    for (const kind of kinds) {
      const file = join(certs, name, kind.file);
      if (await lstat(file).catch(() => null)) found.push({ kind, file });
    }
    if (found.length === 0) continue;
    const lock = await acquireLock(`${join(certs, name)}.lock`).catch(() => null);
    if (!lock) continue;
    try {
      for (const { kind, file } of found) await kind.remove(file, logger);
    } finally {
      await lock.release();
    }
  }
}

function parseRecord(v: unknown): Record_ {
  if (!isRecord(v) || v.version !== 1 || !Array.isArray(v.files) || !Array.isArray(v.dirs)) {
    throw new Error("not a webroot record");
  }
  // Only what the webroot solver makes: a token file in .well-known/acme-challenge and those two
  // directories, by absolute path; a record edited to name anything else is ignored.
  const files = v.files.filter(
    (f): f is { path: string; content: string } =>
      isRecord(f) &&
      typeof f.path === "string" &&
      /^\/.*\/\.well-known\/acme-challenge\/[A-Za-z0-9_-]+$/.test(f.path) &&
      typeof f.content === "string",
  );
  const dirs = v.dirs.filter(
    (d): d is string => typeof d === "string" && /^\/.*\/\.well-known(\/acme-challenge)?$/.test(d),
  );
  return { files, dirs };
}
