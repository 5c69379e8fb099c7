/** Parsing of the HTTP headers ACME leans on: Retry-After (RFC 9110 10.2.3) and Link (RFC 8288). */

export { parseRetryAfter, RETRY_AFTER_MAX_MS } from "../util/retry-after";

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
