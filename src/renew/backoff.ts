const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** The longest a Retry-After (e.g. from rateLimited) may push the next attempt out. */
export const MAX_RETRY_AFTER_MS = 7 * DAY;

/**
 * When to try again after `failures` consecutive failed renewals: 1 min, 10 min, 100 min, then
 * once a day, forever (wile never gives up on a certificate). A Retry-After from the CA that
 * lands later wins, capped at 7 days.
 *
 * Jitter: up to +10 % of the scheduled delay (never earlier than the schedule), so that hundreds
 * of certificates that failed together (a CA outage) do not all retry in the same minute. A
 * Retry-After is honoured exactly, without jitter. Pass `random = () => 0` for no jitter.
 */
export function nextAttemptAfterFailure(
  failures: number,
  now: Date,
  retryAfterMs?: number | null,
  random: () => number = Math.random,
): Date {
  const n = Math.max(1, Math.floor(failures));
  const base = n >= 4 ? DAY : MINUTE * 10 ** (n - 1);
  const jitter = Math.floor(base * 0.1 * Math.min(1, Math.max(0, random())));
  const scheduled = base + jitter;
  const hinted =
    retryAfterMs !== undefined && retryAfterMs !== null && Number.isFinite(retryAfterMs) && retryAfterMs > 0
      ? Math.min(retryAfterMs, MAX_RETRY_AFTER_MS)
      : 0;
  return new Date(now.getTime() + Math.max(scheduled, hinted));
}
