import { isIP } from "node:net";
import type { Identifier } from "../acme/types";
import { KEY_TYPES, type KeyType } from "../crypto/keys";
import type { DnsCheckSettings } from "../dns/propagation";
import { parseServer } from "../dns/transport";
import { WileError } from "../util/errors";
import { printable } from "../util/text";

/** One deploy target's settings (src/deploy/<kind>.ts reads the rest). */
export interface DeployConfig {
  kind: string;
  [setting: string]: unknown;
}

/**
 * How a name is proved with dns-01: `{ provider, ...settings }`, the provider's settings without
 * secrets (src/dns/provider.ts readProviderSettings checks them when they are used; secrets come
 * from the environment or the home's config on every run).
 */
export interface DnsConfig {
  provider: string;
  [setting: string]: unknown;
}

export const CHALLENGE_TYPES = ["http-01", "dns-01", "dns-persist-01", "tls-alpn-01", "mixed"] as const;

/**
 * wile's own listener for some names: the names, the port (--http-port / --tls-port) and the
 * address (--http-address / --tls-address; every address of this machine when absent).
 */
export interface ListenerConfig {
  /** Identifier values proved through this listener (never a wildcard). */
  names: string[];
  port: number;
  address?: string;
}

/** How the names proved with tls-alpn-01 are answered: wile's own TLS listener (--alpn). */
export type AlpnConfig = ListenerConfig;

/** How names are proved with http-01 answered by wile's own listener (--standalone). */
export type StandaloneConfig = ListenerConfig;

/** renewal.json: every setting used at issue time, so that a renewal replays it exactly. */
export interface RenewalConfig {
  version: 1;
  name: string;
  identifiers: Identifier[];
  /**
   * Each identifier is proved one way: a webroot (http-01), a DNS provider (dns-01) or the
   * operator's persistent record _validation-persist.NAME (dns-persist-01).
   */
  challenge: {
    /** What the names use, for people reading the file: all one type, or "mixed". */
    type: (typeof CHALLENGE_TYPES)[number];
    /** identifier value -> absolute webroot (http-01) */
    webroots: Record<string, string>;
    /** identifier value (a wildcard as "*.example.com") -> DNS provider (dns-01); absent when none. */
    dns?: Record<string, DnsConfig>;
    /**
     * Identifier values (a wildcard as "*.example.com") proved by dns-persist-01; absent when none.
     * A list, not settings: wile only checks the record, which the operator keeps in the zone.
     */
    persist?: string[];
    /**
     * Identifier values proved by stateless http-01 (wile issue --stateless): the web server answers
     * every token from the account's thumbprint (wile stateless prints its configuration); absent when none.
     */
    stateless?: string[];
    /**
     * dns-01 names only: the propagation check (--dns-timeout seconds, --dns-resolvers as given,
     * --no-dns-check as skip). Absent: the defaults (the zone's authoritative servers, 180 s).
     */
    dnsCheck?: DnsCheckSettings;
    /** Names proved with http-01 by wile's own listener (--standalone); absent when none. */
    standalone?: StandaloneConfig;
    /** name (a wildcard as "*.example.com") -> ZONE of --dns-alias: the record goes to `_acme-challenge.ZONE`. */
    dnsAlias?: Record<string, string>;
    /** The names proved with tls-alpn-01 and the listener's port and address; absent when none. */
    alpn?: AlpnConfig;
  };
  keyType: KeyType;
  /** ACME directory URL. */
  server: string;
  caBundle?: string;
  account: string;
  email: string[];
  preferredChain?: string;
  /** ACME profile (draft-ietf-acme-profiles), e.g. "shortlived"; the CA's default when absent. */
  profile?: string;
  /** Renew this many days before notAfter instead of by ARI or the 1/3-of-lifetime rule. */
  renewDays?: number;
  mustStaple: boolean;
  preflight: boolean;
  resolve: string[];
  reuseKey: boolean;
  createdAt: string;
  updatedAt: string;
  /** Deploy targets `{ kind, ...settings }`, checked by src/deploy when they are used. */
  deploy: DeployConfig[];
}

/** challenge.type for the names proved by webroots, by DNS providers and by persistent records. */
export function challengeType(
  webroots: object,
  dns: object | undefined,
  persist: readonly string[] = [],
  stateless: readonly string[] = [],
  standalone: readonly string[] = [],
  alpn: readonly string[] = [],
): RenewalConfig["challenge"]["type"] {
  const used = [
    ...(Object.keys(webroots).length > 0 || stateless.length > 0 || standalone.length > 0
      ? (["http-01"] as const)
      : []),
    ...(dns !== undefined && Object.keys(dns).length > 0 ? (["dns-01"] as const) : []),
    ...(persist.length > 0 ? (["dns-persist-01"] as const) : []),
    ...(alpn.length > 0 ? (["tls-alpn-01"] as const) : []),
  ];
  return used.length > 1 ? "mixed" : (used[0] ?? "http-01");
}

export function serializeRenewalConfig(cfg: RenewalConfig): string {
  return `${JSON.stringify(cfg, null, 2)}\n`;
}

/**
 * The one format of a wrong field in renewal.json: `<file>: "<field>" <problem>.`, with how to fix
 * it (by default: edit the field, or issue again, which rewrites the file).
 */
export function renewalFieldError(file: string, field: string, problem: string, fix?: string): WileError {
  return new WileError(`${file}: "${field}" ${problem}.`, {
    hint: `Fix "${field}" in ${file} (or ${fix ?? "issue the certificate again with wile issue to rewrite it"}).`,
  });
}

/** Parse and strictly check renewal.json; anything wrong is a WileError naming file, field and fix. */
export function parseRenewalConfig(text: string, file: string): RenewalConfig {
  const fail = (field: string, want: string): never => {
    throw renewalFieldError(file, field, want);
  };
  if (text.trim() === "") {
    throw new WileError(`${file} is empty.`, {
      hint: `Put back a copy (renewal.json is every setting of the certificate), or issue the certificate again with wile issue to rewrite it.`,
    });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new WileError(`${file} is not valid JSON: ${printable((e as Error).message, 200)}.`, {
      hint: `Fix the JSON syntax in ${file} (or issue the certificate again with wile issue to rewrite it).`,
    });
  }
  if (!isObject(v)) return fail("(top level)", "must be a JSON object");
  const str = (field: string, x: unknown): string =>
    typeof x === "string" && x.length > 0 ? x : fail(field, "must be a non-empty string");
  const optStr = (field: string, x: unknown): string | undefined =>
    x === undefined ? undefined : str(field, x);
  const bool = (field: string, x: unknown): boolean =>
    typeof x === "boolean" ? x : fail(field, "must be true or false");
  const strings = (field: string, x: unknown): string[] =>
    Array.isArray(x) && x.every((s) => typeof s === "string")
      ? x
      : fail(field, "must be an array of strings");
  const date = (field: string, x: unknown): string =>
    Number.isNaN(Date.parse(str(field, x))) ? fail(field, "must be an ISO 8601 date") : (x as string);

  if (v.version !== 1) fail("version", "must be 1");
  const identifiers = Array.isArray(v.identifiers) && v.identifiers.length > 0 ? v.identifiers : [];
  if (identifiers.length === 0) fail("identifiers", "must be a non-empty array");
  identifiers.forEach((id: unknown, i: number) => {
    if (!isObject(id) || (id.type !== "dns" && id.type !== "ip"))
      fail(`identifiers[${i}].type`, 'must be "dns" or "ip"');
    else str(`identifiers[${i}].value`, id.value);
  });
  const ids = (identifiers as Identifier[]).map(({ type, value }) => ({ type, value }));

  const ch = v.challenge;
  if (!isObject(ch)) fail("challenge", "must be an object");
  const challenge = ch as Record<string, unknown>;
  const type = challenge.type as RenewalConfig["challenge"]["type"];
  if (!CHALLENGE_TYPES.includes(type)) fail("challenge.type", `must be one of ${CHALLENGE_TYPES.join(", ")}`);
  if (!isObject(challenge.webroots)) fail("challenge.webroots", "must be an object of name -> absolute path");
  const entries = Object.entries(challenge.webroots as Record<string, unknown>);
  for (const [name, root] of entries) {
    if (typeof root !== "string" || !root.startsWith("/"))
      fail(`challenge.webroots.${printable(name, 80)}`, "must be an absolute path");
  }
  // Own keys only: "constructor" or "__proto__" must not find Object.prototype's.
  const webroots = Object.fromEntries(entries) as Record<string, string>;
  let dns: Record<string, DnsConfig> | undefined;
  if (challenge.dns !== undefined) {
    if (!isObject(challenge.dns)) fail("challenge.dns", "must be an object of name -> DNS provider settings");
    const dnsEntries = Object.entries(challenge.dns as Record<string, unknown>);
    for (const [name, entry] of dnsEntries) {
      if (!isObject(entry) || typeof entry.provider !== "string" || entry.provider === "")
        fail(`challenge.dns.${printable(name, 80)}.provider`, "must be a DNS provider name");
      if (Object.hasOwn(webroots, name))
        fail(
          `challenge.dns.${printable(name, 80)}`,
          "is also in challenge.webroots (a name is proved one way)",
        );
    }
    dns = Object.fromEntries(dnsEntries) as Record<string, DnsConfig>;
  }
  let persist: string[] | undefined;
  if (challenge.persist !== undefined) {
    persist = strings("challenge.persist", challenge.persist);
    for (const name of persist) {
      if (Object.hasOwn(webroots, name) || (dns && Object.hasOwn(dns, name)))
        fail(
          `challenge.persist`,
          `names ${printable(name, 80)}, which has a webroot or DNS provider too (a name is proved one way)`,
        );
    }
  }
  let stateless: string[] | undefined;
  if (challenge.stateless !== undefined) {
    stateless = strings("challenge.stateless", challenge.stateless);
    for (const name of stateless) {
      if (name.startsWith("*."))
        fail("challenge.stateless", `names ${printable(name, 80)}, a wildcard (http-01 cannot prove one)`);
      if (Object.hasOwn(webroots, name) || (dns && Object.hasOwn(dns, name)) || persist?.includes(name))
        fail(
          "challenge.stateless",
          `names ${printable(name, 80)}, which is proved another way too (a name is proved one way)`,
        );
    }
  }
  const standalone =
    challenge.standalone === undefined
      ? undefined
      : parseListener("challenge.standalone", challenge.standalone, fail);
  for (const name of standalone?.names ?? []) {
    if (
      Object.hasOwn(webroots, name) ||
      (dns && Object.hasOwn(dns, name)) ||
      persist?.includes(name) ||
      stateless?.includes(name)
    )
      fail(
        "challenge.standalone.names",
        `names ${printable(name, 80)}, which is proved another way too (a name is proved one way)`,
      );
  }
  const dnsCheck = challenge.dnsCheck === undefined ? undefined : parseDnsCheck(challenge.dnsCheck, fail);
  let dnsAlias: Record<string, string> | undefined;
  if (challenge.dnsAlias !== undefined) {
    if (!isObject(challenge.dnsAlias)) fail("challenge.dnsAlias", "must be an object of name -> DNS zone");
    const aliasEntries = Object.entries(challenge.dnsAlias as Record<string, unknown>);
    for (const [name, zone] of aliasEntries) {
      const field = `challenge.dnsAlias.${printable(name, 80)}`;
      if (!(dns && Object.hasOwn(dns, name))) fail(field, "names no name proved with dns-01 (challenge.dns)");
      if (typeof zone !== "string" || !isDnsName(zone))
        fail(field, "must be a DNS name (e.g. alias.example)");
    }
    dnsAlias = Object.fromEntries(aliasEntries) as Record<string, string>;
  }
  const alpn =
    challenge.alpn === undefined ? undefined : parseListener("challenge.alpn", challenge.alpn, fail);
  for (const name of alpn?.names ?? []) {
    if (
      Object.hasOwn(webroots, name) ||
      (dns && Object.hasOwn(dns, name)) ||
      persist?.includes(name) ||
      stateless?.includes(name) ||
      standalone?.names.includes(name)
    )
      fail(
        "challenge.alpn.names",
        `names ${printable(name, 80)}, which is proved another way too (a name is proved one way)`,
      );
  }
  for (const id of ids) {
    if (dns && Object.hasOwn(dns, id.value)) continue;
    if (persist?.includes(id.value) || stateless?.includes(id.value)) continue;
    if (standalone?.names.includes(id.value)) continue;
    if (alpn?.names.includes(id.value)) continue;
    if (id.value.startsWith("*."))
      fail(
        `challenge.dns.${printable(id.value, 80)}`,
        "is missing (a wildcard is proved with dns-01 or dns-persist-01)",
      );
    if (!Object.hasOwn(webroots, id.value))
      fail(
        `challenge.webroots.${printable(id.value, 80)}`,
        "is missing (every identifier needs a webroot, a DNS provider, challenge.persist, challenge.stateless, challenge.standalone or challenge.alpn)",
      );
  }

  const keyType = v.keyType;
  if (!KEY_TYPES.includes(keyType as KeyType)) fail("keyType", `must be one of ${KEY_TYPES.join(", ")}`);
  const server = str("server", v.server);
  if (!/^https?:\/\//.test(server)) fail("server", "must be an http(s) URL of an ACME directory");
  if (!Array.isArray(v.deploy)) fail("deploy", "must be an array");
  (v.deploy as unknown[]).forEach((d, i) => {
    if (!isObject(d) || typeof d.kind !== "string" || d.kind === "")
      fail(`deploy[${i}].kind`, "must be a target kind");
  });

  const cfg: RenewalConfig = {
    version: 1,
    name: str("name", v.name),
    identifiers: ids,
    challenge: {
      type,
      webroots,
      ...(dns ? { dns } : {}),
      ...(persist ? { persist } : {}),
      ...(stateless ? { stateless } : {}),
      ...(standalone ? { standalone } : {}),
      ...(dnsCheck ? { dnsCheck } : {}),
      ...(dnsAlias ? { dnsAlias } : {}),
      ...(alpn ? { alpn } : {}),
    },
    keyType: keyType as KeyType,
    server,
    account: str("account", v.account),
    email: strings("email", v.email),
    mustStaple: bool("mustStaple", v.mustStaple),
    preflight: bool("preflight", v.preflight),
    resolve: strings("resolve", v.resolve),
    reuseKey: bool("reuseKey", v.reuseKey),
    createdAt: date("createdAt", v.createdAt),
    updatedAt: date("updatedAt", v.updatedAt),
    deploy: v.deploy as DeployConfig[],
  };
  const caBundle = optStr("caBundle", v.caBundle);
  if (caBundle !== undefined) cfg.caBundle = caBundle;
  const preferredChain = optStr("preferredChain", v.preferredChain);
  if (preferredChain !== undefined) cfg.preferredChain = preferredChain;
  const profile = optStr("profile", v.profile);
  if (profile !== undefined) cfg.profile = profile;
  if (v.renewDays !== undefined) {
    if (typeof v.renewDays !== "number" || !(v.renewDays > 0) || v.renewDays > 3650)
      fail("renewDays", "must be a number of days between 0 and 3650");
    cfg.renewDays = v.renewDays as number;
  }
  return cfg;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A DNS name as --dns-alias takes it: letters, digits, "-", "_", dots between labels; no trailing dot. */
export function isDnsName(name: string): boolean {
  return (
    name.length <= 253 &&
    name.split(".").every((l) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l))
  );
}

/**
 * challenge.standalone and challenge.alpn (wile's own listeners): `{ names: [NAME, ...], port:
 * 1-65535, address?: IP }`; no wildcard names (CAs validate them only through DNS).
 */
function parseListener(
  field: "challenge.standalone" | "challenge.alpn",
  v: unknown,
  fail: (field: string, want: string) => never,
): ListenerConfig {
  if (!isObject(v)) return fail(field, "must be an object { names, port, address? }");
  const names = v.names;
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === "string" && n !== ""))
    fail(`${field}.names`, "must be a non-empty array of names");
  for (const n of names as string[]) {
    if (n.startsWith("*."))
      fail(
        `${field}.names`,
        `names ${printable(n, 80)} (a wildcard is proved with dns-01 or dns-persist-01)`,
      );
  }
  const port = v.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65_535)
    fail(`${field}.port`, "must be a port number from 1 to 65535");
  const out: ListenerConfig = { names: names as string[], port: port as number };
  if (v.address !== undefined) {
    if (typeof v.address !== "string" || isIP(v.address) === 0)
      fail(`${field}.address`, "must be an IPv4 or IPv6 address of this machine");
    out.address = v.address as string;
  }
  return out;
}

/** challenge.dnsCheck: `{ timeout: SECONDS, resolvers?: ["HOST[:PORT]", ...], skip?: true }`. */
function parseDnsCheck(v: unknown, fail: (field: string, want: string) => never): DnsCheckSettings {
  if (!isObject(v)) return fail("challenge.dnsCheck", "must be an object { timeout, resolvers?, skip? }");
  const t = v.timeout;
  if (typeof t !== "number" || !Number.isInteger(t) || t < 1 || t > 86_400)
    fail("challenge.dnsCheck.timeout", "must be a whole number of seconds from 1 to 86400");
  const out: DnsCheckSettings = { timeout: t as number };
  if (v.resolvers !== undefined) {
    if (!Array.isArray(v.resolvers) || v.resolvers.length === 0)
      fail("challenge.dnsCheck.resolvers", "must be a non-empty array of HOST[:PORT] strings");
    (v.resolvers as unknown[]).forEach((r, i) => {
      let ok = typeof r === "string";
      try {
        if (ok) parseServer(r as string);
      } catch {
        ok = false;
      }
      if (!ok) fail(`challenge.dnsCheck.resolvers[${i}]`, "must be HOST or HOST:PORT ([IPv6]:PORT)");
    });
    out.resolvers = v.resolvers as string[];
  }
  if (v.skip !== undefined) {
    if (typeof v.skip !== "boolean") fail("challenge.dnsCheck.skip", "must be true or false");
    if (v.skip) out.skip = true;
  }
  return out;
}
