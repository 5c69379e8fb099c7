/**
 * `--dns PROVIDER` and the providers' own options on the command line (issue): the option table
 * and help from each provider's declaration (src/dns/provider.ts), and the flags turned into
 * renewal.json's `challenge.dns` entries through the same check that reads them back.
 */

import {
  DEFAULT_DNS_TIMEOUT_S,
  type DnsCheckSettings,
  parseDnsTimeout,
  parseResolverList,
} from "../dns/propagation";
import type { DnsProviderKind } from "../dns/provider";
import { readProviderSettings } from "../dns/provider";
import { DNS_PROVIDERS, providerFromName, providerUsage } from "../dns/registry";
import { type DnsConfig, isDnsName } from "../store/renewal";
import { UsageError } from "../util/errors";
import { SettingError, type Settings } from "../util/settings";
import { printable } from "../util/text";
import { type OptionSpec, type ParsedOptions, str } from "./options";
import {
  flagName,
  flagNamer,
  givenSettings,
  isGiven,
  settingOptions,
  settingUsageError,
} from "./setting-options";

export const DNS_OPTION: OptionSpec = {
  name: "dns",
  type: "string",
  repeat: true,
  arg: "PROVIDER",
  help: `prove control with a DNS TXT record (dns-01) that PROVIDER adds and removes: ${DNS_PROVIDERS.map(providerUsage).join(", ")}; per name like -w (-d a --dns exec -d b -w /srv/b); needed for *.NAME`,
};

/** Every option of every provider, in declaration order. */
export function allProviderOptions(kinds: readonly DnsProviderKind[] = DNS_PROVIDERS): OptionSpec[] {
  return kinds.flatMap((k) => settingOptions(k.name, optionSettings(k)));
}

/** The settings given with options: all but the qualifier, which is part of the name (acmesh:dns_cf). */
function optionSettings(kind: DnsProviderKind): Settings {
  const q = kind.qualifier?.key;
  return Object.fromEntries(Object.entries(kind.settings).filter(([key]) => key !== q));
}

/**
 * The renewal.json entry (`{ provider, ...settings }`, no secrets) for each provider in `used`:
 * its flags, else its environment variables, else the home config's `dns` section (`dnsConfig`),
 * checked by its declaration. A provider this wile
 * does not know, a flag of a provider not used, or settings the check refuses: UsageError.
 */
export function dnsConfigsFromOptions(
  opts: ParsedOptions,
  used: readonly string[],
  env: Record<string, string | undefined>,
  kinds: readonly DnsProviderKind[] = DNS_PROVIDERS,
  dnsConfig: Record<string, Record<string, unknown>> = {},
): Map<string, DnsConfig> {
  const chosen: { name: string; kind: DnsProviderKind; qualified: Record<string, unknown> }[] = [];
  for (const name of new Set(used)) {
    const found = providerFromName(name, kinds);
    if (!found) {
      throw new UsageError(`unknown --dns provider "${printable(name, 80)}"`, {
        hint: `Providers: ${kinds.map(providerUsage).join(", ")}.`,
      });
    }
    const q = found.kind.qualifier;
    if (q && found.given[q.key] === undefined) {
      throw new UsageError(
        `--dns ${found.kind.name} needs a ${q.key} after a colon: --dns ${providerUsage(found.kind)}`,
        {
          hint: `For example: ${found.kind.example}.`,
        },
      );
    }
    chosen.push({ name, kind: found.kind, qualified: found.given });
  }
  for (const kind of kinds) {
    if (chosen.some((c) => c.kind === kind)) continue;
    const stray = Object.entries(optionSettings(kind)).find(([key, s]) => isGiven(opts, kind.name, key, s));
    if (stray) {
      const flag = flagName(kind.name, stray[0], stray[1]);
      const dns = providerUsage(kind);
      throw new UsageError(
        `--${flag} belongs to the ${kind.name} DNS provider, but no name uses --dns ${dns}`,
        {
          hint: `Put --dns ${dns} next to the -d names it proves (like -w), or drop --${flag}.`,
        },
      );
    }
  }
  const out = new Map<string, DnsConfig>();
  for (const { name, kind, qualified } of chosen) {
    const decl = optionSettings(kind);
    const given = { ...givenSettings(kind.name, decl, opts), ...qualified };
    try {
      const { stored } = readProviderSettings(
        kind,
        given,
        { env, config: dnsConfig[kind.name] ?? {} },
        flagNamer(kind.name, decl),
      );
      out.set(name, stored as DnsConfig);
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      const key = err.key;
      if (key !== undefined && decl[key]?.cli === false && err.message === "is missing") {
        // A secret with no option: say where it can come from.
        const vars = (kind.env as Record<string, string[] | undefined> | undefined)?.[key] ?? [];
        throw new UsageError(
          `--dns ${printable(name, 80)} needs ${kind.name}.${key}${vars.length > 0 ? `, from the environment (${vars.join(", ")})` : ""} or from this home's config`,
          {
            hint: `${vars.length > 0 ? `Export ${vars[0]}=..., or store` : "Store"} it once (read from stdin, kept in config.json, mode 0600): wile config --dns-credential ${kind.name}.${key}`,
          },
        );
      }
      throw settingUsageError(
        err,
        `--dns ${printable(name, 80)}`,
        kind.name,
        decl,
        given,
        `For example: ${kind.example}.`,
      );
    }
  }
  return out;
}

/** The propagation check's options (src/dns/propagation.ts); they apply to every name proved with --dns. */
export const DNS_CHECK_OPTIONS: OptionSpec[] = [
  {
    name: "dns-timeout",
    type: "string",
    arg: "SECONDS",
    help: `wait up to SECONDS for every DNS server to show the TXT records before the CA is asked (default ${DEFAULT_DNS_TIMEOUT_S}; --timeout still bounds the whole run)`,
  },
  {
    name: "dns-resolvers",
    type: "string",
    arg: "LIST",
    help: "check the TXT records at these servers (HOST[:PORT],...; IPv6 as [ADDR]:PORT), every one of them, instead of the zone's authoritative servers; also used to look up CNAMEs of _acme-challenge.NAME",
  },
  {
    name: "dns-check",
    type: "boolean",
    defaultTrue: true,
    help: "--no-dns-check: do not wait until the TXT records can be seen in DNS; ask the CA at once",
  },
  {
    name: "dns-alias",
    type: "string",
    arg: "ZONE",
    help: "write each --dns name's record at _acme-challenge.ZONE instead (acme.sh's --challenge-alias: _acme-challenge.NAME must be a CNAME to it); without it a CNAME at _acme-challenge.NAME is followed",
  },
];

/**
 * renewal.json's `challenge.dnsCheck` and `challenge.dnsAlias` from the options, checked
 * (UsageError); `dnsNames` are the names proved with --dns, `persistNames` those proved with
 * dns-persist-01 (whose record check takes --dns-timeout, --dns-resolvers and --no-dns-check too).
 * A --dns-* option without such a name is a UsageError; with none given, dnsCheck is the
 * defaults written out when a name uses --dns.
 */
export function dnsCheckFromOptions(
  opts: ParsedOptions,
  dnsNames: readonly string[],
  persistNames: readonly string[] = [],
): { dnsCheck?: DnsCheckSettings; dnsAlias?: Record<string, string> } {
  const timeout = str(opts, "dns-timeout");
  const resolvers = str(opts, "dns-resolvers");
  const alias = str(opts, "dns-alias");
  const skip = opts["dns-check"] === false;
  if (dnsNames.length === 0) {
    const given = [
      alias !== undefined && "--dns-alias",
      persistNames.length === 0 && timeout !== undefined && "--dns-timeout",
      persistNames.length === 0 && resolvers !== undefined && "--dns-resolvers",
      persistNames.length === 0 && skip && "--no-dns-check",
    ].find(Boolean);
    if (given) {
      throw new UsageError(
        `${given} is about DNS records, but no name is proved with --dns${given === "--dns-alias" ? "" : " or --challenge dns-persist-01"}`,
        {
          hint: `Add --dns PROVIDER next to the -d names to prove with DNS records, or drop ${given}.`,
        },
      );
    }
    if (timeout === undefined && resolvers === undefined && !skip) return {};
  }
  const dnsCheck: DnsCheckSettings = {
    timeout: timeout === undefined ? DEFAULT_DNS_TIMEOUT_S : parseDnsTimeout(timeout),
  };
  if (resolvers !== undefined) {
    parseResolverList(resolvers);
    dnsCheck.resolvers = resolvers.split(",").map((r) => r.trim());
  }
  if (skip) {
    // --dns-resolvers still serves the CNAME lookup; a time to wait makes no sense without a wait.
    if (timeout !== undefined) {
      throw new UsageError("--no-dns-check skips the wait that --dns-timeout bounds", {
        hint: "Give one or the other.",
      });
    }
    dnsCheck.skip = true;
  }
  if (alias === undefined) return { dnsCheck };
  const zone = alias.replace(/\.$/, "").toLowerCase();
  if (!isDnsName(zone) || !zone.includes(".")) {
    throw new UsageError(`--dns-alias "${alias}" is not a DNS name`, {
      hint: "Example: --dns-alias acme-validation.example.net (the record goes to _acme-challenge.acme-validation.example.net).",
    });
  }
  return { dnsCheck, dnsAlias: Object.fromEntries(dnsNames.map((n) => [n, zone])) };
}
