/** Retry-After (RFC 9110 10.2.3), read for the ACME client (src/acme) and the DNS APIs (src/dns). */

/** A longer Retry-After is read as this: nothing waits a year, and now + the wait stays a valid Date. */
export const RETRY_AFTER_MAX_MS = 365 * 24 * 3600 * 1000;

/**
 * Milliseconds to wait according to a Retry-After value, either delta-seconds or an HTTP-date.
 * Returns null when the header is absent or unparseable; never negative, at most RETRY_AFTER_MAX_MS.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return null;
  const text = raw.trim();
  if (text === "") return null;
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, RETRY_AFTER_MAX_MS);
  // An HTTP-date always names a day and month; Date.parse would also accept "-5" or "1.5".
  if (!/[a-z]{3}/i.test(text)) return null;
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.min(Math.max(0, when - now), RETRY_AFTER_MAX_MS);
}
