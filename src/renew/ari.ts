/**
 * ACME Renewal Information (RFC 9773): ask the CA when a certificate should be renewed.
 *
 *   GET <directory.renewalInfo>/<CertID>   (unauthenticated)
 *   200 { "suggestedWindow": { "start": RFC 3339, "end": RFC 3339 }, "explanationURL"?: URL }
 *   Retry-After: when to ask again
 */
import type { AcmeClient } from "../acme/client";
import { WileError } from "../util/errors";
import { isRecord, printable } from "../util/text";

export interface RenewalWindow {
  start: Date;
  end: Date;
  explanationURL?: string;
  /** From Retry-After (unclamped); null when the CA sent none. */
  retryAfterMs: number | null;
}

/**
 * The CA answered, but not with a usable renewal window (invalid JSON, no suggestedWindow, bad
 * dates, end <= start). Callers fall back to the lifetime rule and ask again in a few hours.
 */
export class AriAnswerError extends WileError {}

/** RFC 3339 date-time (the format RFC 9773 requires), e.g. 2026-12-01T00:00:00Z. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The CA's suggested renewal window for `certId`, or null when its directory has no renewalInfo.
 * Throws AcmeProblem (a WileError) for HTTP errors, NetworkError for transport failures (the
 * client's timeout and size cap apply), and AriAnswerError for an answer that is not a valid window.
 */
export async function fetchRenewalWindow(client: AcmeClient, certId: string): Promise<RenewalWindow | null> {
  const res = await client.getRenewalInfo(certId);
  if (res === null) return null;
  const what = `the CA's renewal information for ${certId} (${res.url})`;
  let body: unknown = res.json;
  if (body === undefined) {
    // Served without a JSON content type: still try, the content is what matters.
    const text = res.body.toString("utf8");
    try {
      body = JSON.parse(text);
    } catch {
      throw new AriAnswerError(`${what} is not JSON: ${printable(text, 80) || "(empty)"}`);
    }
  }
  return { ...parseRenewalInfo(body, what), retryAfterMs: res.retryAfterMs };
}

/** Checks an ARI answer; throws AriAnswerError naming `what` when it is not a valid window. */
export function parseRenewalInfo(
  body: unknown,
  what = "the CA's renewal information",
): Omit<RenewalWindow, "retryAfterMs"> {
  const fail = (why: string): never => {
    throw new AriAnswerError(`${what} is unusable: ${why}`, {
      hint: "wile renews by the certificate's lifetime meanwhile and asks the CA again later; nothing to do unless this persists.",
    });
  };
  if (!isRecord(body)) return fail("not a JSON object");
  const w = body.suggestedWindow;
  if (!isRecord(w)) return fail("no suggestedWindow");
  const start = rfc3339(w.start);
  const end = rfc3339(w.end);
  if (!start) return fail(`suggestedWindow.start is not an RFC 3339 date (${shown(w.start)})`);
  if (!end) return fail(`suggestedWindow.end is not an RFC 3339 date (${shown(w.end)})`);
  if (end.getTime() <= start.getTime()) {
    return fail(`suggestedWindow ends (${end.toISOString()}) before it starts (${start.toISOString()})`);
  }
  const out: Omit<RenewalWindow, "retryAfterMs"> = { start, end };
  const url = explanation(body.explanationURL);
  if (url) out.explanationURL = url;
  return out;
}

/** A uniformly random moment in [start, end), as RFC 9773 4.2 asks (spreads the CA's load). */
export function pickInWindow(w: { start: Date; end: Date }, random: () => number): Date {
  const r = Math.min(Math.max(random(), 0), 1);
  const span = w.end.getTime() - w.start.getTime();
  return new Date(w.start.getTime() + Math.floor(span * r));
}

function rfc3339(x: unknown): Date | null {
  if (typeof x !== "string" || !RFC3339.test(x)) return null;
  const t = Date.parse(x);
  return Number.isNaN(t) ? null : new Date(t);
}

/** An http(s) explanationURL, printable; anything else is dropped (it is only shown to people). */
function explanation(x: unknown): string | undefined {
  if (typeof x !== "string") return undefined;
  try {
    const u = new URL(x);
    if (u.protocol !== "https:" && u.protocol !== "http:") return undefined;
    return printable(u.href, 300);
  } catch {
    return undefined;
  }
}

function shown(x: unknown): string {
  return x === undefined ? "missing" : printable(JSON.stringify(x) ?? String(x), 60);
}
