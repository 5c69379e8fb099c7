import { join } from "node:path";
import { isRecord, printable } from "../util/text";
import { ensureDir, readFileIfExists, writeFileAtomic } from "./fs-safe";

/**
 * Per-certificate renewal state, `<home>/certs/<name>/state.json`:
 * ```
 * { "version": 1, "failures": 0, "lastSuccess": "...", "nextAttempt": "...",
 *   "ari": { "certId": "...", "checkedAt": "...", "nextCheck": "...", "windowStart": "...",
 *            "windowEnd": "...", "chosen": "..." } }
 * ```
 * It is a cache and a memo, never a source of truth: a missing or corrupt file reads as
 * emptyState(), so it can never block a renewal. Times are ISO 8601 strings (UTC).
 */
export interface AriState {
  /** RFC 9773 CertID the cached answer belongs to; a new certificate invalidates the cache. */
  certId: string;
  checkedAt: string;
  /**
   * Do not ask the CA again before this: Retry-After clamped to 1 min..1 day (6 h without one),
   * 6 h after a broken answer, or a growing backoff after HTTP/network errors.
   */
  nextCheck: string;
  windowStart?: string;
  windowEnd?: string;
  /** The random moment picked in the window, kept until the window changes. */
  chosen?: string;
  explanationURL?: string;
  /** Why the last answer was not usable (the fallback rule applied meanwhile). */
  error?: string;
  /** Consecutive ARI fetch errors (for the backoff of nextCheck). */
  errors?: number;
}

export interface RenewalState {
  version: 1;
  /** Consecutive failed renewals. */
  failures: number;
  lastAttempt?: string;
  lastSuccess?: string;
  lastError?: string;
  /** Not before: backoff after a failure or a rate limit. */
  nextAttempt?: string;
  ari?: AriState;
  /**
   * The certificate with this serial is stored but its deploy failed: the next run deploys it again
   * even though it is not due.
   */
  deployPending?: { serial: string; error: string; since: string };
}

export function emptyState(): RenewalState {
  return { version: 1, failures: 0 };
}

export function statePath(home: string, name: string): string {
  return join(home, "certs", name, "state.json");
}

/** The state of `name`; a missing, unreadable-as-JSON or wrongly shaped file gives emptyState(). */
export async function readState(home: string, name: string): Promise<RenewalState> {
  return (await inspectState(home, name).catch(() => ({ state: emptyState() }))).state;
}

/**
 * The state of `name` as readState gives it, and what was wrong with the file, if anything: the
 * fields dropped, or that it is not JSON (`damage`, one line). Throws the file system's error when
 * the file exists but cannot be read (a directory, no permission): then it cannot be rewritten either.
 */
export async function inspectState(
  home: string,
  name: string,
): Promise<{ state: RenewalState; damage?: string }> {
  const text = await readFileIfExists(statePath(home, name));
  if (text === null) return { state: emptyState() };
  if (text.trim() === "") return { state: emptyState(), damage: "it is empty" };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { state: emptyState(), damage: `it is not valid JSON (${printable((e as Error).message, 200)})` };
  }
  const problems: string[] = [];
  const state = parseState(v, problems);
  return problems.length === 0 ? { state } : { state, damage: problems.join("; ") };
}

export async function writeState(home: string, name: string, state: RenewalState): Promise<void> {
  const file = statePath(home, name);
  await ensureDir(join(home, "certs", name), 0o700);
  await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

/**
 * Keeps what is well formed and drops the rest field by field: a bad date in the ARI cache only
 * costs one more ARI request, not the failure count. What was dropped is added to `problems`.
 */
export function parseState(v: unknown, problems: string[] = []): RenewalState {
  if (!isRecord(v)) {
    problems.push("it is not a JSON object");
    return emptyState();
  }
  if (v.version !== 1) {
    problems.push(`"version" is ${printable(JSON.stringify(v.version) ?? "missing", 40)}, not 1`);
    return emptyState();
  }
  const state = emptyState();
  const drop = (field: string, want: string) => {
    if (v[field] !== undefined) problems.push(`"${field}" ${want}`);
  };
  if (typeof v.failures === "number" && Number.isInteger(v.failures) && v.failures >= 0) {
    state.failures = v.failures;
  } else drop("failures", "must be a whole number of at least 0");
  for (const k of ["lastAttempt", "lastSuccess", "nextAttempt"] as const) {
    if (isDate(v[k])) state[k] = v[k];
    else drop(k, "must be an ISO 8601 date");
  }
  if (typeof v.lastError === "string") state.lastError = v.lastError;
  else drop("lastError", "must be a string");
  const ari = v.ari;
  if (isRecord(ari) && typeof ari.certId === "string" && isDate(ari.checkedAt) && isDate(ari.nextCheck)) {
    const a: AriState = { certId: ari.certId, checkedAt: ari.checkedAt, nextCheck: ari.nextCheck };
    if (isDate(ari.windowStart) && isDate(ari.windowEnd) && isDate(ari.chosen)) {
      a.windowStart = ari.windowStart;
      a.windowEnd = ari.windowEnd;
      a.chosen = ari.chosen;
    }
    if (typeof ari.explanationURL === "string") a.explanationURL = ari.explanationURL;
    if (typeof ari.error === "string") a.error = ari.error;
    if (typeof ari.errors === "number" && Number.isInteger(ari.errors) && ari.errors > 0)
      a.errors = ari.errors;
    state.ari = a;
  } else drop("ari", "is not a valid ARI cache (certId, checkedAt, nextCheck)");
  const dp = v.deployPending;
  if (isRecord(dp) && typeof dp.serial === "string" && typeof dp.error === "string" && isDate(dp.since)) {
    state.deployPending = { serial: dp.serial, error: dp.error, since: dp.since };
  } else drop("deployPending", "is not a valid pending deploy (serial, error, since)");
  return state;
}

function isDate(x: unknown): x is string {
  return typeof x === "string" && !Number.isNaN(Date.parse(x));
}
