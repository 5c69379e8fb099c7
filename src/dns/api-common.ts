/**
 * What the HTTP API providers (src/dns/providers/cloudflare.ts, hetzner.ts, digitalocean.ts,
 * desec.ts, acme-dns.ts) share: the API address and token settings, and the names a zone lookup
 * tries.
 */
import { required, type Setting, text, withDefault } from "../util/settings";

const LOOPBACK = new Set(["127.0.0.1", "[::1]", "localhost"]);

/**
 * Why `v` is not a usable API address, or undefined: https (any host), or http to this host only
 * (a self-hosted acme-dns on the same machine; credentials never cross a network in clear text).
 */
export function apiUrlProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return "must be a URL such as https://api.example.com/v1";
  }
  if (u.username || u.password) return "must not carry credentials (they are settings of their own)";
  if (u.search || u.hash) return "must not have a query or fragment";
  if (u.protocol === "https:") return undefined;
  if (u.protocol === "http:" && LOOPBACK.has(u.hostname)) return undefined;
  return "must be an https:// URL (http:// only to 127.0.0.1, [::1] or localhost)";
}

/** The API address setting, `--<provider>-api URL`, with the provider's real address as default. */
export function apiUrlSetting(label: string, fallback: string): Setting<string> & { fallback: string } {
  return withDefault(
    text({
      arg: "URL",
      help: `${label}: the API address (default ${fallback}; a test double or a proxy)`,
      check: apiUrlProblem,
    }),
    fallback.replace(/\/+$/, ""),
  );
}

/** A required secret: never in renewal.json, messages or logs; best given in the environment. */
export function tokenSetting(
  label: string,
  what: string,
  envNames: string[],
): Setting<string> & { required: true } {
  return required(
    text({
      arg: "TOKEN",
      secret: true,
      cli: false,
      help: `${label}: the ${what} (better in the environment: ${envNames.join(" or ")}; never stored, so renewals read it there again)`,
    }),
  );
}

/** `base` + `path` (base without a trailing slash, path starting with one). */
export function apiUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}${path}`;
}

/**
 * The names that may be the zone holding `fqdn`, most specific first: the name and each parent
 * (`_acme-challenge.a.example.com` -> `a.example.com`, `example.com`), leaving out what no DNS
 * host accepts as a zone - a name whose first label starts with "_" (a hostname cannot) and a
 * single label (a TLD) - so that an API that validates zone names is never asked about them. The
 * first one the API knows as a zone is the zone.
 */
export function zoneCandidates(fqdn: string): string[] {
  const labels = fqdn.replace(/\.$/, "").toLowerCase().split(".");
  return labels
    .map((_, i) => labels.slice(i))
    .filter((l) => l.length >= 2 && !(l[0] as string).startsWith("_"))
    .map((l) => l.join("."));
}

/** `fqdn` relative to `zone`: "" for the apex, else the labels before the zone. */
export function relativeName(fqdn: string, zone: string): string {
  const f = fqdn.replace(/\.$/, "").toLowerCase();
  const z = zone.replace(/\.$/, "").toLowerCase();
  if (f === z) return "";
  if (!f.endsWith(`.${z}`)) throw new Error(`${f} is not in the zone ${z}`);
  return f.slice(0, -(z.length + 1));
}

/** A TXT value as zone-file text: in double quotes (our values are base64url: nothing to escape). */
export function quotedTxt(value: string): string {
  return `"${value}"`;
}

/** A TXT record's text as an API shows it, without the quotes some APIs keep around it. */
export function unquotedTxt(content: string): string {
  const t = content.trim();
  if (!t.startsWith('"')) return t;
  // "a" "b" (one value split in strings) is the concatenation.
  return [...t.matchAll(/"((?:[^"\\]|\\.)*)"/g)]
    .map((m) => (m[1] as string).replace(/\\(.)/g, "$1"))
    .join("");
}

/**
 * One zone lookup per parent name for all the records of a run (a name and its wildcard share
 * `_acme-challenge.NAME`, and present() may run for both at once); a failed lookup is not kept.
 */
export function zoneCache<T>(find: (fqdn: string) => Promise<T>): (fqdn: string) => Promise<T> {
  const zones = new Map<string, Promise<T>>();
  return (fqdn) => {
    let z = zones.get(fqdn);
    if (!z) {
      z = find(fqdn);
      z.catch(() => zones.delete(fqdn));
      zones.set(fqdn, z);
    }
    return z;
  };
}

/**
 * The zone holding `fqdn`: `lookup` asked for each of zoneCandidates(fqdn), most specific first,
 * until it finds one (undefined: not a zone of this account); undefined when none is.
 */
export async function walkUp<T>(
  fqdn: string,
  lookup: (name: string) => Promise<T | undefined>,
): Promise<{ name: string; zone: T } | undefined> {
  for (const name of zoneCandidates(fqdn)) {
    const zone = await lookup(name);
    if (zone !== undefined) return { name, zone };
  }
  return undefined;
}

/** Every item of a paged list: `page(1)`, `page(2)`, ... while the API says there are more. */
export async function allPages<T>(page: (n: number) => Promise<{ items: T[]; more: boolean }>): Promise<T[]> {
  const all: T[] = [];
  for (let n = 1; ; n++) {
    const p = await page(n);
    all.push(...p.items);
    if (!p.more || p.items.length === 0) return all;
  }
}

/** `hint` for an answer refusing the credentials (401, 403), else undefined (the generic hint). */
export function authHint(status: number, hint: string): string | undefined {
  return status === 401 || status === 403 ? hint : undefined;
}
