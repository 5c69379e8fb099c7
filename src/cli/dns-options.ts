/**
 * `--dns PROVIDER` and the providers' own options on the command line (issue): the option table
 * and help from each provider's declaration (src/dns/provider.ts), and the flags turned into
 * renewal.json's `challenge.dns` entries through the same check that reads them back.
 */
import type { DnsProviderKind } from "../dns/provider";
import { readProviderSettings } from "../dns/provider";
import { DNS_PROVIDERS, providerFromName, providerUsage } from "../dns/registry";
import type { DnsConfig } from "../store/renewal";
import { UsageError } from "../util/errors";
import { SettingError, type Settings } from "../util/settings";
import { printable } from "../util/text";
import type { OptionSpec, ParsedOptions } from "./options";
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
 * its flags, else its environment variables, checked by its declaration. A provider this wile
 * does not know, a flag of a provider not used, or settings the check refuses: UsageError.
 */
export function dnsConfigsFromOptions(
  opts: ParsedOptions,
  used: readonly string[],
  env: Record<string, string | undefined>,
  kinds: readonly DnsProviderKind[] = DNS_PROVIDERS,
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
      const { stored } = readProviderSettings(kind, given, { env }, flagNamer(kind.name, decl));
      out.set(name, stored as DnsConfig);
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
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
