import type { DnsProviderKind } from "./provider";
import { acmeDnsProvider } from "./providers/acme-dns";
import { acmeshProvider } from "./providers/acmesh";
import { cloudflareProvider } from "./providers/cloudflare";
import { desecProvider } from "./providers/desec";
import { digitaloceanProvider } from "./providers/digitalocean";
import { execProvider } from "./providers/exec";
import { hetznerProvider } from "./providers/hetzner";
import { powerdnsProvider } from "./providers/powerdns";
import { rfc2136Provider } from "./providers/rfc2136";
import { route53Provider } from "./providers/route53";

/**
 * Every DNS provider, in the order help lists them. A new provider is one file in
 * src/dns/providers/ and one line here.
 */
export const DNS_PROVIDERS: readonly DnsProviderKind[] = [
  execProvider,
  rfc2136Provider,
  acmeshProvider,
  cloudflareProvider,
  route53Provider,
  digitaloceanProvider,
  hetznerProvider,
  desecProvider,
  powerdnsProvider,
  acmeDnsProvider,
] as DnsProviderKind[];

export function dnsProvider(name: string): DnsProviderKind | undefined {
  return DNS_PROVIDERS.find((k) => k.name === name);
}

/** How help names a provider: `exec`, `acmesh:dns_x` (one with a qualifier). */
export function providerUsage(kind: DnsProviderKind): string {
  return kind.qualifier ? `${kind.name}:${kind.qualifier.arg}` : kind.name;
}

/**
 * What `--dns NAME` names: the provider, and for `NAME:VALUE` the setting VALUE gives (its
 * qualifier: `acmesh:dns_cf` -> acmesh with script "dns_cf"; the value is checked with the other
 * settings). Undefined for a provider this wile does not know, or `:VALUE` after one without a
 * qualifier. A provider with a qualifier named without one gets no setting (it is then missing).
 */
export function providerFromName(
  name: string,
  kinds: readonly DnsProviderKind[] = DNS_PROVIDERS,
): { kind: DnsProviderKind; given: Record<string, unknown> } | undefined {
  const colon = name.indexOf(":");
  const base = colon < 0 ? name : name.slice(0, colon);
  const kind = kinds.find((k) => k.name === base);
  if (!kind) return undefined;
  if (colon < 0) return { kind, given: {} };
  if (!kind.qualifier) return undefined;
  return { kind, given: { [kind.qualifier.key]: name.slice(colon + 1) } };
}
