import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, chmod, chown, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsyncDir, removeStaleTemps } from "../store/fs-safe";
import { DeployError } from "./target";

export interface Owner {
  uid?: number;
  gid?: number;
}

export interface InstallOptions {
  /** Holds a private key: see secretMode. */
  secret: boolean;
  /** The mode the operator asked for: it wins (an existing file's mode is kept otherwise). */
  mode?: number;
  /** chown to these (where permitted); an existing file's owner is kept otherwise. */
  owner?: Owner;
}

/**
 * The mode of a file that holds a key, when the operator named none: an existing file's mode when
 * it gives others nothing (0600, 0640 root:ssl-cert: a deliberate set-up, kept), else 0600, or
 * 0640 when a group is given. So a key written over a world-readable file is never world-readable.
 */
export function secretMode(existing: number | undefined, owner: Owner | undefined): number {
  if (existing !== undefined && (existing & 0o007) === 0) return existing & 0o7777;
  return owner?.gid !== undefined ? 0o640 : 0o600;
}

/**
 * Writes `path` the way a service must see it: a temp file in the same directory, fsynced, then
 * renamed over the old one, so a reader sees the old file or the new one, never half of it (and
 * a temp file that a killed run left next to it is removed). An
 * existing file keeps its owner and mode unless others are asked for (a key: see secretMode); a new
 * one gets 0600 (key), 0640 (key with a group) or 0644.
 */
export async function installFile(
  path: string,
  content: string | Uint8Array,
  opts: InstallOptions,
): Promise<void> {
  const old = await stat(path).catch(() => null);
  const mode =
    opts.mode ?? (opts.secret ? secretMode(old?.mode, opts.owner) : old ? old.mode & 0o7777 : 0o644);
  const uid = opts.owner?.uid ?? old?.uid;
  const gid = opts.owner?.gid ?? old?.gid;
  // A temp file of a run killed before its rename (a key, perhaps): removed, not left for good.
  const prefix = `.${basename(path)}.wile-`;
  await removeStaleTemps(dirname(path), (entry) => entry.startsWith(prefix));
  const temp = join(dirname(path), `.${basename(path)}.wile-${randomBytes(4).toString("hex")}`);
  // Created 0600 so a key is never readable by others, even for an instant; the final mode is set below.
  const fh = await open(
    temp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    await fh.writeFile(content);
    await fh.sync();
    await fh.close();
    if (uid !== undefined || gid !== undefined) {
      try {
        await chown(temp, uid ?? -1, gid ?? -1);
      } catch (err) {
        throw new DeployError(
          `cannot give ${path} the owner ${uid ?? ""}:${gid ?? ""}: ${(err as NodeJS.ErrnoException).code}`,
          {
            hint: "Changing a file's owner needs root (or, for the group, membership in it). Drop --owner, or deploy as a user who may.",
          },
        );
      }
    }
    await chmod(temp, mode);
    await rename(temp, path);
    await fsyncDir(dirname(path));
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(temp).catch(() => {});
    if (err instanceof DeployError) throw err;
    throw new DeployError(`cannot write ${path}: ${(err as Error).message}`);
  }
}

/**
 * Before anything is changed: `path` can be written (its directory exists and is writable, and an
 * existing file is a regular file).
 */
export async function checkWritable(path: string, what: string): Promise<void> {
  const dir = dirname(path);
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) {
    throw new DeployError(`${what}: the directory ${dir} for ${path} does not exist`, {
      hint: "Create it, or give another path.",
    });
  }
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new DeployError(`${what}: ${dir} is not writable by this user, so ${path} cannot be replaced`, {
      hint: "Give the user write access to that directory (for example a group it is in), or deploy to a path it owns and point the service there.",
    });
  }
  const existing = await stat(path).catch(() => null);
  if (existing && !existing.isFile()) {
    throw new DeployError(`${what}: ${path} exists and is not a regular file`);
  }
}
