/**
 * What the DNS providers (src/dns/providers/*) share: the API address and token settings,
 * the names a zone lookup tries, TXT values in presentation form, changing a TXT set, and one
 * change at a time.
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
  return parentNames(fqdn).filter((n) => n.includes(".") && !n.startsWith("_"));
}

/** `fqdn` and each of its parents, most specific first, lower case, without the trailing dot. */
export function parentNames(fqdn: string): string[] {
  const labels = fqdn.replace(/\.$/, "").toLowerCase().split(".");
  return labels.map((_, i) => labels.slice(i).join("."));
}

/** `fqdn` relative to `zone`: "" for the apex, else the labels before the zone. */
export function relativeName(fqdn: string, zone: string): string {
  const f = fqdn.replace(/\.$/, "").toLowerCase();
  const z = zone.replace(/\.$/, "").toLowerCase();
  if (f === z) return "";
  if (!f.endsWith(`.${z}`)) throw new Error(`${f} is not in the zone ${z}`);
  return f.slice(0, -(z.length + 1));
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

/**
 * A TXT value in the zone-file presentation form that DNS APIs such as PowerDNS and Route 53 take
 * and give: one quoted string, `"` and `\` escaped with a backslash.
 */
export function quoteTxt(value: string): string {
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * The TXT value that presentation-form content stands for: its quoted strings joined (a long value
 * may be split into several), escapes (`\"`, `\\`, `\DDD`) undone. Unquoted content is taken as it is.
 */
export function unquoteTxt(content: string): string {
  const parts = [...content.matchAll(/"((?:[^"\\]|\\.)*)"/g)];
  if (parts.length === 0) return content.trim();
  return parts
    .map((m) =>
      (m[1] as string).replace(/\\(\d{3}|.)/g, (_, e: string) =>
        e.length === 3 ? String.fromCharCode(Number(e)) : e,
      ),
    )
    .join("");
}

/**
 * The records of a TXT set after adding (`add`) or removing `value`, or undefined when nothing has
 * to change (the value is there already, or gone already). Records holding other values are kept
 * as they are, in their order. `content` gives a record's presentation-form content, `make` builds
 * the record of a new value from its content, and `active` tells whether a record holding the
 * value counts as there (PowerDNS keeps disabled records).
 */
export function changeTxtSet<T>(
  records: readonly T[],
  value: string,
  add: boolean,
  how: { content: (r: T) => string; make: (content: string) => T; active?: (r: T) => boolean },
): T[] | undefined {
  const ours = (r: T) => unquoteTxt(how.content(r)) === value;
  const others = records.filter((r) => !ours(r));
  if (add) {
    if (records.some((r) => ours(r) && (how.active?.(r) ?? true))) return undefined;
    return [...others, how.make(quoteTxt(value))];
  }
  return others.length === records.length ? undefined : others;
}

/**
 * Every name from `fqdn` up, canonical (with the trailing dot): `a.b.example.com.`, `b.example.com.`,
 * `example.com.`, `com.`; PowerDNS and Route 53 try each as a zone (a zone may be named
 * `_acme-challenge.example.com`).
 */
export function canonicalParents(fqdn: string): string[] {
  return parentNames(fqdn).map((n) => `${n}.`);
}

/**
 * A queue that runs the jobs given to it one at a time, in order (a failed job does not stop the
 * next): the changes of one provider, so that two values at one name (a name and its wildcard)
 * cannot both read the set before either writes it back.
 */
export function oneAtATime(): <T>(job: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(job: () => Promise<T>) => {
    const next = tail.then(job);
    tail = next.catch(() => undefined);
    return next;
  };
}
