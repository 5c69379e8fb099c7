import { stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { UsageError } from "../util/errors";
import { tempPathFor } from "./fs-safe";

const DENIED = new Set(["EACCES", "EPERM", "EROFS"]);

/** A directory wile must write to refuses it (exit 2: nothing was ordered, nothing changed). */
export class NotWritableError extends UsageError {}

/**
 * Checks that wile can create files in each directory, by creating and removing a probe file
 * (`.write-test.tmp-<random>`, which CertStore.prune removes should a crash leave it): the one
 * test that sees modes, ACLs, read-only mounts and immutable flags alike, and that root passes
 * where root can write. Throws NotWritableError naming the first directory that refuses, and the fix.
 */
export async function checkWritable(dirs: string[], why: string): Promise<void> {
  for (const dir of dirs) {
    const probe = tempPathFor(join(dir, "write-test"));
    try {
      await writeFile(probe, "", { flag: "wx", mode: 0o600 });
    } catch (err) {
      throw (await notWritable(err, why)) ?? err;
    }
    await unlink(probe).catch(() => {});
  }
}

/**
 * The error to show for a file-system error that is a permission problem (EACCES, EPERM, EROFS),
 * naming the nearest existing directory of the path it failed on (the one that refused to hold
 * it), else null.
 */
export async function notWritable(err: unknown, why: string): Promise<NotWritableError | null> {
  const e = err as NodeJS.ErrnoException;
  if (!e || typeof e.code !== "string" || !DENIED.has(e.code) || !e.path) return null;
  let where = e.path;
  let st = await stat(where).catch(() => null);
  while (!st && dirname(where) !== where) {
    where = dirname(where);
    st = await stat(where).catch(() => null);
  }
  const uid = process.getuid?.();
  const owner = st && uid !== undefined && st.uid !== uid ? `, owned by uid ${st.uid}` : "";
  const me = uid === undefined ? "" : ` (uid ${uid})`;
  return new NotWritableError(`${where} is not writable for this user${me}${owner}: ${e.code}; ${why}`, {
    hint:
      e.code === "EROFS"
        ? `${where} is on a read-only file system: use a --home on a writable one.`
        : `Make it writable for the user wile runs as (chown -R $(id -un) ${where}), or run wile as the user that owns it.`,
    cause: err,
  });
}
