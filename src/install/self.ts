import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, link, lstat, readlink, rename, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { currentProgram } from "../cron/crontab";
import { fsyncDir, readFileIfExists, tempPathFor, writeFileAtomic } from "../store/fs-safe";
import { run } from "../util/spawn";
import { isRecord } from "../util/text";

/**
 * The running program as a file that `wile upgrade` can replace: the standalone binary itself
 * (`kind: "binary"`, release artifact wile-linux-<arch>), or the wile.cjs that node runs
 * (`kind: "node"`, artifact wile.cjs). install.sh puts either at <home>/bin/ (the binary as
 * `wile`; wile.cjs next to a small `wile` wrapper that names node by its absolute path) and writes
 * install.json beside it.
 */
export interface OwnProgram {
  kind: "binary" | "node";
  /** Absolute path of the file to replace. */
  path: string;
  /** The release file that replaces it. */
  artifact: string;
  /** argv prefix that runs a file of this kind: [] for a binary, [node] for wile.cjs. */
  runner: string[];
}

export function ownProgram(program: string[] = currentProgram(), arch: string = process.arch): OwnProgram {
  if (program.length === 1) {
    const path = program[0] as string;
    return { kind: "binary", path, artifact: `wile-linux-${arch}`, runner: [] };
  }
  return { kind: "node", path: program[1] as string, artifact: "wile.cjs", runner: [program[0] as string] };
}

/** <dir>/install.json, written by install.sh. */
export interface InstallRecord {
  version: 1;
  downloadUrl?: string;
  kind?: string;
  /** The `wile` that install.sh put in place (the binary, or the wrapper for wile.cjs). */
  program?: string;
  /** The home install.sh set up (its crontab line); `wile uninstall` defaults to it. */
  home?: string;
  /** The ~/.local/bin/wile link install.sh made, if any. */
  link?: string | null;
  [key: string]: unknown;
}

export function installRecordPath(programPath: string): string {
  return join(dirname(programPath), "install.json");
}

/** The install record next to the program, or null when there is none (not installed by install.sh). */
export async function readInstallRecord(programPath: string): Promise<InstallRecord | null> {
  const text = await readFileIfExists(installRecordPath(programPath));
  if (text === null) return null;
  try {
    const raw = JSON.parse(text) as unknown;
    if (isRecord(raw) && raw.version === 1) return raw as InstallRecord;
  } catch {
    // a broken record counts as none
  }
  return null;
}

export async function writeInstallRecord(programPath: string, record: InstallRecord): Promise<void> {
  await writeFileAtomic(installRecordPath(programPath), `${JSON.stringify(record, null, 2)}\n`, 0o644);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Runs `<runner> <file> version` and returns the version it prints ("wile X" -> "X"), or throws
 * with what it said: a program that does not start is never swapped in.
 */
export async function versionOf(runner: string[], file: string): Promise<string> {
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run([...runner, file, "version"], {
      timeoutMs: 30_000,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" },
    });
  } catch (e) {
    throw new Error(`cannot start it: ${(e as Error).message}`);
  }
  const m = /^wile (\S+)\s*$/.exec(r.stdout);
  if (r.code !== 0 || !m?.[1]) {
    const said = `${r.stdout}${r.stderr}`.trim().split("\n").slice(0, 3).join(" / ");
    throw new Error(`${r.timedOut ? "timed out" : `exit ${r.code ?? r.signal}`}${said ? `: ${said}` : ""}`);
  }
  return m[1];
}

export function backupPath(path: string): string {
  return `${path}.prev`;
}

/**
 * Replaces `target` with `fresh` (a complete file in the same directory): the current target is
 * hard-linked as <target>.prev first (replacing an older backup atomically), then `fresh` is
 * renamed over `target`, so the path always names a complete program. Returns the backup path.
 */
export async function swapInto(fresh: string, target: string, mode = 0o755): Promise<string> {
  const backup = backupPath(target);
  await chmod(fresh, mode);
  const tmp = tempPathFor(backup);
  await link(target, tmp);
  try {
    await rename(tmp, backup);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await rename(fresh, target);
  await fsyncDir(dirname(target));
  return backup;
}

/** True when `linkPath` is a symlink that points at `target` (resolved against its directory). */
export async function isLinkTo(linkPath: string, target: string): Promise<boolean> {
  try {
    const st = await lstat(linkPath);
    if (!st.isSymbolicLink()) return false;
    return resolve(dirname(linkPath), await readlink(linkPath)) === resolve(target);
  } catch {
    return false;
  }
}

/** The files install.sh may have put into the program's directory. */
export function installedFiles(dir: string): string[] {
  return ["wile", "wile.cjs", "wile.prev", "wile.cjs.prev", "install.json"].map((n) => join(dir, n));
}
