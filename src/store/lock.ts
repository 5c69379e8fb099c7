import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { link, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { removeStaleTemps, tempPathFor } from "./fs-safe";

/**
 * A lock file so that two wile runs never work on the same certificate or account at once.
 * The file holds `{"pid", "procStart", "startedAt", "command", "id"}` and is created complete
 * (temp file + link, which fails if the lock exists). A lock is stale, and taken over, when its
 * pid is no longer alive (kill -9, reboot) or is alive with another start time than the one
 * recorded (the pid was reused by an unrelated process). The start time is field 22 of
 * /proc/<pid>/stat (clock ticks since boot); where there is no /proc, only the pid is checked.
 * Temp files of a run killed while locking are removed, once a minute old, by the first acquire
 * of the next process in that directory.
 */
export interface Lock {
  readonly path: string;
  /** Remove the lock file if it is still ours. Never throws for a lock that is already gone. */
  release(): Promise<void>;
}

interface LockContent {
  pid: number;
  /** The holder's start time (/proc/<pid>/stat field 22), when known. */
  procStart?: string;
  startedAt: string;
  /** What holds it, for messages: "wile cron", "wile issue example.com". */
  command?: string;
  id: string;
}

/**
 * Take the lock at `path` for `command` (a short description shown to whoever finds it held), or
 * return null while a live process holds it (describeLockHolder says which).
 */
export async function acquireLock(path: string, command?: string): Promise<Lock | null> {
  await sweepLockTemps(dirname(path));
  const procStart = processStartTime(process.pid);
  const mine: LockContent = {
    pid: process.pid,
    ...(procStart ? { procStart } : {}),
    startedAt: new Date().toISOString(),
    ...(command ? { command } : {}),
    id: randomBytes(8).toString("hex"),
  };
  const text = `${JSON.stringify(mine)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await createExclusive(path, text)) return makeLock(path, mine.id);
    const held = await readLock(path);
    if (held === undefined) continue; // vanished in between: try to create again
    if (held && isLive(held)) return null;
    if (await takeOver(path, text, mine.id)) return makeLock(path, mine.id);
  }
  return null;
}

/**
 * Who holds the lock at `path`, for a message: "wile cron (pid 1234, since 2026-11-29 08:41:02
 * UTC)"; null when nothing live holds it (any more).
 */
export async function describeLockHolder(path: string): Promise<string | null> {
  const held = await readLock(path).catch(() => null);
  if (!held || !isLive(held)) return null;
  const since = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(held.startedAt)
    ? `, since ${held.startedAt.slice(0, 10)} ${held.startedAt.slice(11, 19)} UTC`
    : "";
  return `${held.command ?? "another wile process"} (pid ${held.pid}${since})`;
}

/** Lock directories already swept by this process. */
const swept = new Set<string>();
/** The temp files of createExclusive (".x.lock.tmp-HEX") and takeOver (".x.lock.takeover.tmp-HEX"). */
const LOCK_TEMP = /^\..+\.lock(\.takeover)?\.tmp-/;

/**
 * Removes lock temp files a run killed while locking (or taking a stale lock over) left in `dir`,
 * once per directory and process: cron takes one lock per certificate, all in certs/, and one
 * pass over it covers every lock there (a pass per lock would read the directory N times).
 */
async function sweepLockTemps(dir: string): Promise<void> {
  if (swept.has(dir)) return;
  swept.add(dir);
  await removeStaleTemps(dir, (entry) => LOCK_TEMP.test(entry));
}

function makeLock(path: string, id: string): Lock {
  return {
    path,
    async release() {
      const held = await readLock(path);
      if (held?.id === id) await unlink(path).catch(() => {});
    },
  };
}

/** Create `path` with `text` in one step; false if it already exists. */
async function createExclusive(path: string, text: string): Promise<boolean> {
  const tmp = tempPathFor(path);
  await writeFile(tmp, text, { mode: 0o600, flag: "wx" });
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/**
 * Replace a stale lock: under a short-lived guard file (so two runs do not take over at once),
 * check again that the holder is dead, rename a new lock over it, and re-read to confirm.
 */
async function takeOver(path: string, text: string, id: string): Promise<boolean> {
  const guard = `${path}.takeover`;
  if (!(await createExclusive(guard, text))) {
    const g = await readLock(guard);
    // A guard left by a run killed in the middle of a takeover: clear it; the caller retries.
    if (g === null || (g && !isLive(g))) await unlink(guard).catch(() => {});
    return false;
  }
  try {
    const held = await readLock(path);
    if (held && isLive(held)) return false;
    const tmp = tempPathFor(path);
    await writeFile(tmp, text, { mode: 0o600, flag: "wx" });
    await rename(tmp, path);
    return (await readLock(path))?.id === id;
  } finally {
    await unlink(guard).catch(() => {});
  }
}

/** The lock's content; null if unreadable as a lock (treated as stale), undefined if missing. */
async function readLock(path: string): Promise<LockContent | null | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const v = JSON.parse(text) as Partial<LockContent>;
    if (typeof v.pid === "number" && Number.isInteger(v.pid) && v.pid > 0 && typeof v.id === "string") {
      return {
        pid: v.pid,
        ...(typeof v.procStart === "string" ? { procStart: v.procStart } : {}),
        startedAt: String(v.startedAt),
        // Shown in messages: printable characters only, capped.
        ...(typeof v.command === "string"
          ? { command: v.command.replace(/[^\x20-\x7e]/g, "?").slice(0, 200) }
          : {}),
        id: v.id,
      };
    }
  } catch {}
  return null;
}

/** The holder is running: its pid is alive and, when both are known, started when it recorded. */
function isLive(held: LockContent): boolean {
  if (!isAlive(held.pid)) return false;
  if (held.procStart === undefined) return true;
  const now = processStartTime(held.pid);
  return now === undefined || now === held.procStart;
}

/**
 * When process `pid` started, as field 22 (starttime) of /proc/<pid>/stat; undefined without
 * /proc (not Linux) or when the process is gone. Fields are counted after the last ")", since the
 * command name (field 2) may itself hold spaces and parentheses.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = fields[22 - 3];
  return start && /^\d+$/.test(start) ? start : undefined;
}

/** process.kill(pid, 0): ESRCH means gone; EPERM means alive but someone else's. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
