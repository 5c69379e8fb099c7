import { createHash } from "node:crypto";
import { lstatSync, type Stats, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../util/log";
import { isRecord, printable } from "../util/text";
import { VERSION } from "../version";
import { readFileIfExists, writeFileAtomic } from "./fs-safe";
import { homeLayout } from "./paths";

/**
 * What the last run over every certificate (`wile cron`, `wile renew --all`) learnt from each
 * certificate's full check, so that the next run reads nothing of a certificate whose files did not
 * change and whose next moment has not come. `<home>/cron-index.json` (0600, written atomically,
 * only by a run holding cron.lock, and only when it changed):
 * ```
 * { "version": 1, "wile": "0.1.0",
 *   "files": ["<home>/accounts/<ca>/<account>/account.json", "/etc/ssl/private-ca.pem"],
 *   "certs": { "<name>": { "sig": "<hash>", "files": [0, 1], "checkAt": "<ISO 8601>",
 *              "status": "not-due" | "waiting", "reason": "...", "renewAt"?: "...",
 *              "explanationURL"?: "..." } } }
 * ```
 * A cache, never a source of truth: the certificate directories are. `sig` hashes what identifies
 * the files a check reads (inode, size, mtime and ctime of the directory `certs/<name>`, its
 * renewal.json, state.json and current/cert.pem, and of the files outside it that the check needs:
 * the account record and the CA bundle). Writing any of them, in place or by rename, changes it, so
 * a certificate added, removed, renewed, imported or edited by hand is checked in full at the next
 * run. A missing, unreadable or damaged index is rebuilt: it only costs one run of full checks.
 */
export interface IndexEntry {
  sig: string;
  /** Files outside the certificate's directory that its check read, absolute paths. */
  files: string[];
  /** Not to be trusted from this moment on (ms since the epoch): the next check must be a full one. */
  checkAt: number;
  status: "not-due" | "waiting";
  reason: string;
  renewAt?: string;
  explanationURL?: string;
}

/**
 * An entry is only written for files older than this when the check began: a change made just
 * after a check looked at a file may get the same timestamp (Linux stamps files from a clock that
 * ticks every 1 to 10 ms), and would go unseen. On a file system with whole-second timestamps
 * (ext4 with small inodes, some network file systems) the margin is two seconds.
 */
export const RACY_MS = 50;
export const RACY_COARSE_MS = 2000;

export function indexPath(home: string): string {
  return join(home, "cron-index.json");
}

/**
 * The index of `home`; empty when there is none, or when it is damaged or from another wile
 * version (said with -v: the run checks every certificate in full and writes a new one).
 */
export async function readIndex(home: string, logger: Logger): Promise<Map<string, IndexEntry>> {
  const file = indexPath(home);
  const out = new Map<string, IndexEntry>();
  let text: string | null;
  try {
    text = await readFileIfExists(file);
  } catch (e) {
    logger.debug(`${file} is unreadable (${(e as Error).message}): checking every certificate in full`);
    return out;
  }
  if (text === null) return out;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    v = printable((e as Error).message, 120);
  }
  if (!isRecord(v) || v.version !== 1 || !isRecord(v.certs) || !Array.isArray(v.files)) {
    logger.debug(`${file} is damaged: checking every certificate in full and writing it afresh`);
    return out;
  }
  if (v.wile !== VERSION) {
    logger.debug(
      `${file} was written by wile ${printable(String(v.wile), 40)}: checking every certificate in full`,
    );
    return out;
  }
  const files = v.files;
  for (const [name, e] of Object.entries(v.certs)) {
    const entry = parseEntry(e, files);
    if (entry) out.set(name, entry);
  }
  return out;
}

function parseEntry(e: unknown, files: unknown[]): IndexEntry | null {
  if (!isRecord(e) || typeof e.sig !== "string" || typeof e.reason !== "string") return null;
  if (e.status !== "not-due" && e.status !== "waiting") return null;
  const checkAt = typeof e.checkAt === "string" ? Date.parse(e.checkAt) : Number.NaN;
  if (Number.isNaN(checkAt) || !Array.isArray(e.files)) return null;
  const paths: string[] = [];
  for (const i of e.files) {
    const path = typeof i === "number" ? files[i] : undefined;
    if (typeof path !== "string") return null;
    paths.push(path);
  }
  const entry: IndexEntry = { sig: e.sig, files: paths, checkAt, status: e.status, reason: e.reason };
  if (typeof e.renewAt === "string") entry.renewAt = e.renewAt;
  if (typeof e.explanationURL === "string") entry.explanationURL = e.explanationURL;
  return entry;
}

/** The index as JSON text: file paths shared between entries are listed once. */
export function serializeIndex(entries: Map<string, IndexEntry>): string {
  const files: string[] = [];
  const fileIds = new Map<string, number>();
  const certs: Record<string, unknown> = {};
  for (const [name, e] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const ids = e.files.map((f) => {
      let id = fileIds.get(f);
      if (id === undefined) {
        id = files.push(f) - 1;
        fileIds.set(f, id);
      }
      return id;
    });
    certs[name] = {
      sig: e.sig,
      files: ids,
      checkAt: new Date(e.checkAt).toISOString(),
      status: e.status,
      reason: e.reason,
      ...(e.renewAt ? { renewAt: e.renewAt } : {}),
      ...(e.explanationURL ? { explanationURL: e.explanationURL } : {}),
    };
  }
  return `${JSON.stringify({ version: 1, wile: VERSION, files, certs })}\n`;
}

export async function writeIndex(home: string, entries: Map<string, IndexEntry>): Promise<void> {
  await writeFileAtomic(indexPath(home), serializeIndex(entries), 0o600);
}

export interface Signature {
  sig: string;
  /** The newest mtime or ctime among the files (ms since the epoch). */
  newest: number;
  /** How much older than a check its files must be to be trusted: RACY_MS, or RACY_COARSE_MS. */
  margin: number;
}

/**
 * Identifies the files a check of certificate `name` reads, from their metadata only (one stat
 * each, no reads): the directory, renewal.json, state.json (missing is a state too),
 * current/cert.pem (following the links), and `files`. Null when one of them other than state.json
 * is missing or cannot be looked at: such a certificate is always checked in full (the check says
 * what is wrong). `seen` memoizes the stats of `files`, which many certificates share.
 */
export function certSignature(
  home: string,
  name: string,
  files: string[],
  seen: Map<string, Stats | null> = new Map(),
): Signature | null {
  const dir = join(homeLayout(home).certs, name);
  const d = look(dir, true);
  if (!d?.isDirectory()) return null;
  const parts: Array<Stats | null | undefined> = [
    d,
    look(join(dir, "renewal.json")),
    look(join(dir, "current", "cert.pem")),
  ];
  for (const f of files) {
    let st = seen.get(f);
    if (st === undefined) {
      st = look(f);
      seen.set(f, st);
    }
    parts.push(st);
  }
  if (parts.some((p) => !p)) return null;
  const state = look(join(dir, "state.json"));
  let newest = 0;
  let coarse = true;
  const h = createHash("sha256");
  for (const st of [...(parts as Stats[]), state]) {
    if (!st) {
      h.update("-|");
      continue;
    }
    newest = Math.max(newest, st.ctimeMs, st.mtimeMs);
    if (st.ctimeMs % 1000 !== 0 || st.mtimeMs % 1000 !== 0) coarse = false;
    h.update(`${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}|`);
  }
  return { sig: h.digest("base64url").slice(0, 22), newest, margin: coarse ? RACY_COARSE_MS : RACY_MS };
}

/** stat (or lstat), null when missing or not accessible. */
function look(path: string, noFollow = false): Stats | null {
  try {
    return (noFollow ? lstatSync : statSync)(path, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}
