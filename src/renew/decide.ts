/**
 * Whether a certificate is due for renewal, and why. Order of the rules:
 *
 *  1. `force`                                   -> due ("forced")
 *  2. backing off after failed renewals         -> not due until state.nextAttempt ("backoff"),
 *     but never waiting past 24 h before notAfter (the last day is retried at every run)
 *  3. expired                                   -> due ("expired")
 *  4. renewDays in renewal.json                 -> due from notAfter - renewDays ("renew-days")
 *  5. ARI (RFC 9773), when the CA has it and the certificate has an AKI: a uniformly random moment
 *     in the CA's suggested window, kept while the window stays the same; due when that moment
 *     has passed or falls before the next scheduled run ("ari")
 *  6. otherwise, or when ARI fails: due once 1/3 of the lifetime is left, 1/2 for lifetimes
 *     under 10 days ("fallback"). The fallback moment is due only once it has passed: its margin
 *     (days, or hours for short-lived certificates) already covers the 12 h between cron runs.
 *
 * ARI answers are cached in state.ari: no request before nextCheck, which is Retry-After clamped
 * to 1 min..1 day (6 h when the CA sends none, so a twice-daily cron asks at most once a run), 6 h
 * after a broken answer, and a growing backoff (backoff.ts) after HTTP or network errors. An ARI
 * problem is never a failure: it is recorded, logged, and the fallback rule decides.
 */
import { AcmeProblem } from "../acme/problem";
import { NetworkError } from "../acme/transport";
import { ariCertId, type CertInfo } from "../crypto/x509";
import type { RenewalConfig } from "../store/renewal";
import type { AriState, RenewalState } from "../store/state";
import type { Logger } from "../util/log";
import { printable } from "../util/text";
import { pickInWindow, type RenewalWindow } from "./ari";
import { nextAttemptAfterFailure } from "./backoff";
import { fallbackRenewalTime } from "./due";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Next ARI check when the CA sends no Retry-After. */
export const ARI_DEFAULT_RECHECK_MS = 6 * HOUR;
/** Next ARI check after an answer that is not a valid window. */
export const ARI_BROKEN_RECHECK_MS = 6 * HOUR;
export const ARI_MIN_RECHECK_MS = MINUTE;
export const ARI_MAX_RECHECK_MS = DAY;
/** A backoff never delays a retry past this long before notAfter. */
const LAST_CHANCE_MS = DAY;

export interface DecideInput {
  name: string;
  cert: CertInfo;
  cfg: RenewalConfig;
  state: RenewalState;
  now: Date;
  /** When the next scheduled run will happen (cron twice a day: now + 12 h). */
  nextRun: Date;
  /** Null when the CA has no ARI; called only when the state says it is time to ask. */
  ari: ((certId: string) => Promise<RenewalWindow | null>) | null;
  random?: () => number;
  logger: Logger;
  force?: boolean;
}

export interface Decision {
  due: boolean;
  /** One human line, e.g. "ARI window 2026-12-01..2026-12-03 (chose 2026-12-02T10:00Z)". */
  reason: string;
  source: "ari" | "fallback" | "renew-days" | "expired" | "forced" | "backoff";
  /** When it becomes due, for `wile list`. */
  renewAt: Date | null;
  /** CertID to send as `replaces` in newOrder (ARI in use and the certificate has an AKI). */
  replaces?: string;
  explanationURL?: string;
  /** The state to write back (ARI cache, nextCheck). */
  state: RenewalState;
}

export async function decide(input: DecideInput): Promise<Decision> {
  const { cert, cfg, now } = input;
  const random = input.random ?? Math.random;
  let state: RenewalState = { ...input.state, ...(input.state.ari ? { ari: { ...input.state.ari } } : {}) };
  const certId = cert.authorityKeyId ? ariCertId(cert) : undefined;
  const replaces = input.ari && certId ? certId : undefined;
  const done = (d: Omit<Decision, "state" | "replaces">): Decision => ({
    ...d,
    ...(replaces ? { replaces } : {}),
    state,
  });
  const t = now.getTime();
  const notAfter = cert.notAfter.getTime();

  if (input.force) return done({ due: true, reason: "forced", source: "forced", renewAt: now });

  const nextAttempt = state.nextAttempt ? Date.parse(state.nextAttempt) : Number.NaN;
  if (nextAttempt > t) {
    const until = Math.min(nextAttempt, notAfter - LAST_CHANCE_MS);
    if (until > t) {
      const n = state.failures;
      const last = state.lastError ? ` (last error: ${printable(state.lastError, 160)})` : "";
      return done({
        due: false,
        reason: `waiting after ${n} failure${n === 1 ? "" : "s"} until ${fmt(new Date(until))}${last}`,
        source: "backoff",
        renewAt: new Date(until),
      });
    }
  }

  if (notAfter <= t) {
    return done({ due: true, reason: `expired on ${fmt(cert.notAfter)}`, source: "expired", renewAt: now });
  }

  if (cfg.renewDays !== undefined) {
    const at = fallbackRenewalTime(cert.notBefore, cert.notAfter, cfg.renewDays);
    return done({
      due: at.getTime() <= t,
      reason: `renew ${cfg.renewDays} day${cfg.renewDays === 1 ? "" : "s"} before expiry (renewDays)`,
      source: "renew-days",
      renewAt: at,
    });
  }

  let ariNote = "";
  if (input.ari && certId) {
    const cached = state.ari;
    const fresh = cached && cached.certId === certId && Date.parse(cached.nextCheck) > t;
    let ari: AriState;
    if (fresh && cached) {
      ari = cached;
    } else {
      ari = await askCa(
        input.ari,
        certId,
        cached?.certId === certId ? cached : undefined,
        now,
        random,
        input,
      );
      state = { ...state, ari };
    }
    if (ari.error) {
      ariNote = `; ARI unusable until ${fmt(new Date(ari.nextCheck))}: ${printable(ari.error, 160)}`;
    } else if (ari.windowStart && ari.windowEnd && ari.chosen) {
      const chosen = new Date(ari.chosen);
      const due = chosen.getTime() <= t || chosen.getTime() < input.nextRun.getTime();
      const d = done({
        due,
        reason: `ARI window ${fmtWindow(ari.windowStart, ari.windowEnd)} (chose ${fmt(chosen)})`,
        source: "ari",
        renewAt: chosen,
      });
      if (ari.explanationURL) d.explanationURL = ari.explanationURL;
      return d;
    }
  }

  const at = fallbackRenewalTime(cert.notBefore, cert.notAfter);
  const lifetime = notAfter - cert.notBefore.getTime();
  const share = lifetime < 10 * DAY ? "1/2" : "1/3";
  return done({
    due: at.getTime() <= t,
    reason: `${share} of lifetime left${at.getTime() <= t ? "" : ` at ${fmt(at)}`}${ariNote}`,
    source: "fallback",
    renewAt: at,
  });
}

/** One ARI request, turned into the AriState to cache; never throws. */
async function askCa(
  ari: (certId: string) => Promise<RenewalWindow | null>,
  certId: string,
  previous: AriState | undefined,
  now: Date,
  random: () => number,
  input: DecideInput,
): Promise<AriState> {
  const { logger, name } = input;
  const t = now.getTime();
  const base = { certId, checkedAt: now.toISOString() };
  // Keep the last good window and choice across errors, so that a transient error does not
  // re-roll the moment once the same window comes back.
  const kept: Partial<AriState> = {};
  if (previous?.windowStart && previous.windowEnd && previous.chosen) {
    kept.windowStart = previous.windowStart;
    kept.windowEnd = previous.windowEnd;
    kept.chosen = previous.chosen;
  }
  if (previous?.explanationURL) kept.explanationURL = previous.explanationURL;
  let w: RenewalWindow | null;
  try {
    w = await ari(certId);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const fetchError = err instanceof AcmeProblem || err instanceof NetworkError;
    const errors = (previous?.errors ?? 0) + 1;
    const next = fetchError
      ? nextAttemptAfterFailure(
          errors,
          now,
          err instanceof AcmeProblem ? Math.min(err.retryAfterMs ?? 0, ARI_MAX_RECHECK_MS) : null,
          random,
        )
      : new Date(t + ARI_BROKEN_RECHECK_MS);
    logger.warn(
      `${name}: ARI ${fetchError ? "request failed" : "answer unusable"}, renewing by lifetime meanwhile: ${message}`,
    );
    return { ...base, ...kept, nextCheck: next.toISOString(), error: message, errors };
  }
  if (w === null) {
    // The CA has no renewalInfo (any more): the fallback decides; look again in a day.
    return { ...base, nextCheck: new Date(t + ARI_MAX_RECHECK_MS).toISOString() };
  }
  const retry = Math.min(
    Math.max(w.retryAfterMs ?? ARI_DEFAULT_RECHECK_MS, ARI_MIN_RECHECK_MS),
    ARI_MAX_RECHECK_MS,
  );
  const windowStart = w.start.toISOString();
  const windowEnd = w.end.toISOString();
  const same = kept.windowStart === windowStart && kept.windowEnd === windowEnd && kept.chosen !== undefined;
  const chosen = same ? (kept.chosen as string) : pickInWindow(w, random).toISOString();
  const out: AriState = {
    ...base,
    nextCheck: new Date(t + retry).toISOString(),
    windowStart,
    windowEnd,
    chosen,
  };
  if (w.explanationURL) {
    out.explanationURL = w.explanationURL;
    if (w.explanationURL !== previous?.explanationURL) {
      logger.info(`${name}: the CA explains its renewal window at ${w.explanationURL}`);
    }
  }
  return out;
}

/** 2026-12-02T10:00Z: minute precision is plenty for people. */
function fmt(d: Date): string {
  return `${d.toISOString().slice(0, 16)}Z`;
}

/** Whole days as dates, anything else to the minute. */
function fmtWindow(start: string, end: string): string {
  const part = (s: string) => {
    const d = new Date(s);
    return d.getTime() % DAY === 0 ? d.toISOString().slice(0, 10) : fmt(d);
  };
  return `${part(start)}..${part(end)}`;
}
