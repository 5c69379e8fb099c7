/**
 * `--dns PROVIDER` and the providers' own options on the command line (issue): the option table
 * and help from each provider's declaration (src/dns/provider.ts), and the flags turned into
 * renewal.json's `challenge.dns` entries through the same check that reads them back.
 */
import type { DnsProviderKind } from "../dns/provider";
import { readProviderSettings } from "../dns/provider";
import { DNS_PROVIDERS } from "../dns/registry";
import type { DnsConfig } from "../store/renewal";
import { UsageError } from "../util/errors";
import { SettingError } from "../util/settings";
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
  help: `prove control with a DNS TXT record (dns-01) that PROVIDER adds and removes: ${DNS_PROVIDERS.map((k) => k.name).join(", ")}; per name like -w (-d a --dns exec -d b -w /srv/b); needed for *.NAME`,
};

/** Every option of every provider, in declaration order. */
export function allProviderOptions(kinds: readonly DnsProviderKind[] = DNS_PROVIDERS): OptionSpec[] {
  return kinds.flatMap((k) => settingOptions(k.name, k.settings));
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
  const chosen: DnsProviderKind[] = [];
  for (const name of new Set(used)) {
    const kind = kinds.find((k) => k.name === name);
    if (!kind) {
      throw new UsageError(`unknown --dns provider "${name}"`, {
        hint: `Providers: ${kinds.map((k) => k.name).join(", ")}.`,
      });
    }
    chosen.push(kind);
  }
  for (const kind of kinds) {
    if (chosen.includes(kind)) continue;
    const stray = Object.entries(kind.settings).find(([key, s]) => isGiven(opts, kind.name, key, s));
    if (stray) {
      const flag = flagName(kind.name, stray[0], stray[1]);
      throw new UsageError(
        `--${flag} belongs to the ${kind.name} DNS provider, but no name uses --dns ${kind.name}`,
        {
          hint: `Put --dns ${kind.name} next to the -d names it proves (like -w), or drop --${flag}.`,
        },
      );
    }
  }
  const out = new Map<string, DnsConfig>();
  for (const kind of chosen) {
    const given = givenSettings(kind.name, kind.settings, opts);
    try {
      const { stored } = readProviderSettings(
        kind,
        given,
        { env, config: dnsConfig[kind.name] ?? {} },
        flagNamer(kind.name, kind.settings),
      );
      out.set(kind.name, stored as DnsConfig);
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      throw settingUsageError(
        err,
        `--dns ${kind.name}`,
        kind.name,
        kind.settings,
        given,
        `For example: ${kind.example}.`,
      );
    }
  }
  return out;
}
