/** Parsing of the HTTP headers ACME leans on: Retry-After (RFC 9110 10.2.3) and Link (RFC 8288). */

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

export interface LinkValue {
  /** Absolute URL (resolved against the request URL). */
  url: string;
  /** Parameters with lower-case names; `rel` may hold several space-separated relation types. */
  params: Record<string, string>;
}

/**
 * Parses one or more Link header values. Node joins repeated headers with ", ", so a value is a
 * list; commas inside <...> and quoted strings do not split it.
 */
export function parseLinks(header: string | string[] | undefined, base: string): LinkValue[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(", ") : header;
  const links: LinkValue[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /[\s,]/.test(text[i] as string)) i++;
  };
  while (i < text.length) {
    skipSpace();
    if (text[i] !== "<") {
      // Not a link-value: skip to the next top-level comma.
      while (i < text.length && text[i] !== ",") i++;
      continue;
    }
    const close = text.indexOf(">", i);
    if (close < 0) break;
    const target = text.slice(i + 1, close);
    i = close + 1;
    const params: Record<string, string> = {};
    for (;;) {
      while (i < text.length && /[ \t]/.test(text[i] as string)) i++;
      if (text[i] !== ";") break;
      i++;
      while (i < text.length && /[ \t]/.test(text[i] as string)) i++;
      const nameMatch = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(text.slice(i));
      if (!nameMatch) break;
      const name = nameMatch[0].toLowerCase();
      i += nameMatch[0].length;
      while (i < text.length && /[ \t]/.test(text[i] as string)) i++;
      let value = "";
      if (text[i] === "=") {
        i++;
        while (i < text.length && /[ \t]/.test(text[i] as string)) i++;
        if (text[i] === '"') {
          i++;
          while (i < text.length && text[i] !== '"') {
            if (text[i] === "\\" && i + 1 < text.length) i++;
            value += text[i];
            i++;
          }
          i++;
        } else {
          const tok = /^[^;,\s]*/.exec(text.slice(i))?.[0] ?? "";
          value = tok;
          i += tok.length;
        }
      }
      if (!(name in params)) params[name] = value;
    }
    let url: string;
    try {
      url = new URL(target, base).href;
    } catch {
      continue;
    }
    links.push({ url, params });
  }
  return links;
}

/** URLs of the links whose rel list contains `rel` (case-insensitive). */
export function linksWithRel(links: LinkValue[], rel: string): string[] {
  const want = rel.toLowerCase();
  return links
    .filter((l) => (l.params.rel ?? "").toLowerCase().split(/\s+/).includes(want))
    .map((l) => l.url);
}
