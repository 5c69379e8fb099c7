import { randomBytes } from "node:crypto";
import { link, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { tempPathFor } from "./fs-safe";

/**
 * A lock file so that two wile runs never work on the same certificate or account at once.
 * The file holds `{"pid", "startedAt", "id"}` and is created complete (temp file + link, which
 * fails if the lock exists). A lock whose pid is no longer alive (kill -9, reboot) is taken over.
 * Limit: a pid reused by an unrelated live process keeps the lock until that process ends.
 */
export interface Lock {
  readonly path: string;
  /** Remove the lock file if it is still ours. Never throws for a lock that is already gone. */
  release(): Promise<void>;
}

interface LockContent {
  pid: number;
  startedAt: string;
  id: string;
}

/** Take the lock at `path`, or return null while a live process holds it. */
export async function acquireLock(path: string): Promise<Lock | null> {
  const mine: LockContent = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    id: randomBytes(8).toString("hex"),
  };
  const text = `${JSON.stringify(mine)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await createExclusive(path, text)) return makeLock(path, mine.id);
    const held = await readLock(path);
    if (held === undefined) continue; // vanished in between: try to create again
    if (held && isAlive(held.pid)) return null;
    if (await takeOver(path, text, mine.id)) return makeLock(path, mine.id);
  }
  return null;
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
    if (g === null || (g && !isAlive(g.pid))) await unlink(guard).catch(() => {});
    return false;
  }
  try {
    const held = await readLock(path);
    if (held && isAlive(held.pid)) return false;
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
      return { pid: v.pid, startedAt: String(v.startedAt), id: v.id };
    }
  } catch {}
  return null;
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
