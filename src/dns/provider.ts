/**
 * DNS providers: add and remove the TXT records of dns-01 (src/challenges/dns-01.ts). One file per
 * provider under src/dns/providers/, each a DnsProviderKind registered in registry.ts and declared
 * like a deploy target (src/deploy/target.ts): its settings (src/util/settings.ts) give the
 * command-line options `--<name>-<setting>` (or their `flag`), the check of what renewal.json keeps,
 * and which values are secrets.
 *
 * Credentials: a setting may also be read from environment variables (the names the provider's
 * own tools and lego/acme.sh users already have) and from the home's config. Secret settings are
 * never written to renewal.json (they come back from the environment or the home's config on every
 * renewal) and never shown in messages or logs: describe() must not include them.
 */
import type { Logger } from "../util/log";
import { type Namer, readChecked, type Settings, type Values } from "../util/settings";

/** One TXT record of one challenge. */
export interface DnsRecord {
  /** `_acme-challenge.example.com`: lower case, no trailing dot (exec adds the dot lego sends). */
  fqdn: string;
  /** The TXT value: base64url(SHA-256(key authorization)). */
  value: string;
  /** The identifier being validated, without `*.` (what uacme passes as IDENT). */
  identifier: string;
  /** The challenge token (uacme passes it; most providers ignore it). */
  token: string;
}

export interface DnsProvider {
  /** One line for messages, without secrets: `exec (/usr/local/bin/dns-hook)`. */
  describe(): string;
  /**
   * Adds `record.value` at `record.fqdn`, next to any values already there (a name and its wildcard
   * share a record name). Resolves once the provider accepted it. Throws WileError.
   */
  present(record: DnsRecord): Promise<void>;
  /** Removes that one value, leaving other values at the name. Throws WileError. */
  cleanup(record: DnsRecord): Promise<void>;
}

/** What create() gets besides the settings. */
export interface ProviderContext {
  logger: Logger;
  /** The environment for commands the provider runs (default process.env). */
  env?: Record<string, string | undefined>;
  /** wile's home, for a provider that keeps state of its own there (acmesh: dns/acmesh/). */
  home?: string;
}

export interface DnsProviderKind<S extends Settings = Settings> {
  /** What follows --dns: `exec`, `rfc2136`, `cloudflare`. */
  name: string;
  /**
   * A setting given as part of the name: `--dns acmesh:dns_cf` is provider acmesh with setting
   * `script` = dns_cf (`arg` is its placeholder in help). It has no option of its own.
   */
  qualifier?: { key: string; arg: string };
  /** For help: "run your own command: CMD present|cleanup FQDN VALUE (lego's exec)". */
  summary: string;
  /** A typical command line, the hint of a mistake in it. */
  example: string;
  settings: S;
  /**
   * Settings that may come from the environment when the command line does not give them: key ->
   * variable names, the first one set wins (`{ token: ["CLOUDFLARE_DNS_API_TOKEN", "CF_DNS_API_TOKEN"] }`).
   */
  env?: { [K in keyof S]?: string[] };
  /** Checks across settings (each is checked already); throws SettingError naming them with `name`. */
  check?(c: Values<S>, name: Namer): void;
  create(c: Values<S>, ctx: ProviderContext): DnsProvider;
}

/** Declares a provider; the settings' types flow into check() and create(). */
export function defineDnsProvider<S extends Settings>(kind: DnsProviderKind<S>): DnsProviderKind<S> {
  return kind;
}

/** Where settings come from besides what was given (command line or renewal.json). */
export interface SettingSources {
  env?: Record<string, string | undefined>;
  /** This provider's entry in the home's config (`dns.<name>` in config.json), by setting key. */
  config?: Record<string, unknown>;
}

/**
 * A provider's settings: what was given (the command line's flags, or renewal.json's entry) first,
 * then the provider's environment variables, then the home's config; checked by the declaration
 * (the same parse() for every source) and the provider's check(). Returns the values for create()
 * and the normal form for renewal.json: `{ provider, ...settings }` without secrets, which are read
 * again from the environment or config on every run. Throws SettingError.
 */
export function readProviderSettings(
  kind: DnsProviderKind,
  given: Record<string, unknown>,
  sources: SettingSources,
  name: Namer,
): { values: Record<string, unknown>; stored: Record<string, unknown> } {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(kind.settings)) {
    const fromEnv = kind.env?.[key]?.map((v) => sources.env?.[v]).find((v) => v !== undefined && v !== "");
    const value = given[key] ?? fromEnv ?? sources.config?.[key];
    if (value !== undefined) raw[key] = value;
  }
  const r = readChecked(kind.settings, kind.check?.bind(kind), raw, name);
  const stored: Record<string, unknown> = { provider: kind.name };
  for (const [key, v] of Object.entries(r.stored)) if (!kind.settings[key]?.secret) stored[key] = v;
  return { values: r.values, stored };
}
