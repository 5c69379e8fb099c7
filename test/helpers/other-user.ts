/**
 * Running wile as a user that does not own what it finds. Tests often run as root (CI), and root
 * ignores file modes: then wile runs as `nobody` through setpriv, and the files it must not be able
 * to use belong to root. As any other user, chmod is enough and wile runs as it is.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir, wileCjs } from "./wile";

export const isRoot = process.getuid?.() === 0;
/** uid and gid of nobody on Debian. */
export const NOBODY = 65534;

let wrapper: string | undefined;

/**
 * A `bin` for runWile: wile as nobody when this process is root (the home must then be nobody's:
 * see giveToNobody), else undefined (wile runs as this user).
 */
export function otherUserBin(): string | undefined {
  if (!isRoot) return undefined;
  if (wrapper) return wrapper;
  const dir = tempDir("wile-as-nobody-");
  chmodSync(dir, 0o755);
  wrapper = join(dir, "wile-as-nobody");
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups -- "${process.execPath}" "${wileCjs}" "$@"\n`,
    { mode: 0o755 },
  );
  return wrapper;
}

/** chown -R nobody `path` when root (so that wile run by otherUserBin owns it); nothing otherwise. */
export function giveToNobody(path: string): void {
  if (isRoot) execFileSync("chown", ["-R", `${NOBODY}:${NOBODY}`, path]);
}
