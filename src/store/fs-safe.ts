import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, link, mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";

/**
 * `mkdir -p` where every directory it creates gets exactly `mode` whatever the umask. The target
 * itself, when it already exists with more permissions than `mode` and belongs to us, is tightened
 * (so a home made 0755 by hand becomes 0700). Existing parents are left alone.
 */
export async function ensureDir(path: string, mode = 0o700): Promise<void> {
  const target = resolve(path);
  const missing: string[] = [];
  for (let dir = target; ; dir = dirname(dir)) {
    const st = await stat(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return null;
      throw e;
    });
    if (st) {
      if (dir === target) await tighten(target, st.mode, st.uid, mode);
      break;
    }
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    try {
      await mkdir(dir, { mode });
    } catch (e) {
      // Someone else made it in the meantime: fine, but do not chmod a directory we did not create.
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw e;
    }
    await chmod(dir, mode);
  }
}

async function tighten(dir: string, current: number, uid: number, mode: number): Promise<void> {
  const ours = process.getuid === undefined || process.getuid() === uid;
  if (ours && (current & 0o777 & ~mode) !== 0) await chmod(dir, mode);
}

/** A fresh name next to `path` for a temporary file or link. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString("hex")}`);
}

/**
 * Removes temp files in `dir` that a run killed before its rename left behind: names `isTemp`
 * accepts, once older than a minute, so that a temp file another run is writing right now stays.
 */
export async function removeStaleTemps(dir: string, isTemp: (name: string) => boolean): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!isTemp(entry)) continue;
    const file = join(dir, entry);
    const st = await stat(file).catch(() => null);
    if (st?.isFile() && Date.now() - st.mtimeMs > 60_000) await unlink(file).catch(() => {});
  }
}

/** fsync a directory so that a rename or unlink in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write a temp file in the same directory with exactly `mode`, fsync it; returns its path. */
async function writeTemp(path: string, data: string | Uint8Array, mode: number): Promise<string> {
  const tmp = tempPathFor(path);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  return tmp;
}

/**
 * Replace `path` with `data` so that readers see the old or the new content, never a mix, even
 * after a crash: temp file (O_EXCL, `mode`), write, fsync, rename over the target, fsync the
 * directory. No temp file is left behind on error.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dirname(path));
}

/**
 * Like writeFileAtomic but never replaces an existing file: the complete temp file is hard-linked
 * to `path`, which fails with EEXIST if something is already there.
 */
export async function writeFileAtomicNew(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => {});
  }
  await fsyncDir(dirname(path));
}

/** The file's text, or null when it does not exist. Other errors carry `path` (EISDIR lacks it). */
export async function readFileIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT") return null;
    err.path ??= path;
    throw e;
  }
}
