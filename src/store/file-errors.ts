import { userInfo } from "node:os";
import { dirname } from "node:path";
import { WileError } from "../util/errors";

/** The user wile runs as, for hints ("chown me ..."). */
export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

/**
 * A file system error (an errno with a path: EACCES, EISDIR, EROFS, ...) as a WileError that names
 * the path and says what to do; null for anything else. A damaged or misconfigured home is the
 * operator's to fix, never "a bug in wile". `path` overrides the one in the error, `what` says
 * what the file is for ("the renewal settings of example.com").
 */
export function fileError(err: unknown, path?: string, what?: string): WileError | null {
  if (err instanceof WileError || !(err instanceof Error)) return null;
  const e = err as NodeJS.ErrnoException;
  const p = path ?? e.path;
  if (typeof e.code !== "string" || p === undefined) return null;
  const user = currentUser();
  const about = what ? ` (${what})` : "";
  const op = e.syscall ? `${e.syscall} ` : "";
  const access = `Give ${user} access to ${p} and the directories above it (e.g. chown -R ${user} ${dirname(p)}), or run wile as the user that owns them.`;
  const known: Record<string, [string, string]> = {
    EACCES: [`permission denied for user ${user}`, access],
    EPERM: [`operation not permitted for user ${user}`, access],
    EISDIR: [
      "it is a directory where wile expects a file",
      `Move the directory away (mv ${p} ${p}.bad), then run wile again.`,
    ],
    ENOTDIR: [
      "a part of the path is a file, not a directory",
      `Move that file away, or point --home (or WILE_HOME) at a directory.`,
    ],
    EROFS: ["the file system is read-only", "Remount it read-write, or use a --home on a writable one."],
    ENOSPC: ["no space left on the device", "Free some space, then run wile again."],
    EDQUOT: ["the disk quota is used up", "Free some space, then run wile again."],
    ENAMETOOLONG: ["the file name is too long", "Use a shorter --home or certificate name."],
    ELOOP: [
      "too many levels of symbolic links",
      `Replace the symbolic link loop at ${p} with a real file or directory.`,
    ],
    ENOENT: ["it does not exist", `Create it, or check --home (or WILE_HOME).`],
    EEXIST: ["something else is already there", `Move ${p} away, then run wile again.`],
  };
  const [why, hint] = known[e.code] ?? [e.message, `Check ${p}, then run wile again.`];
  return new WileError(`cannot ${op}${p}${about}: ${why} (${e.code}).`, { hint, cause: err });
}
