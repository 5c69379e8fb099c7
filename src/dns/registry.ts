import type { DnsProviderKind } from "./provider";
import { execProvider } from "./providers/exec";
import { powerdnsProvider } from "./providers/powerdns";
import { route53Provider } from "./providers/route53";

/**
 * Every DNS provider, in the order help lists them. A new provider is one file in
 * src/dns/providers/ and one line here.
 */
export const DNS_PROVIDERS: readonly DnsProviderKind[] = [
  execProvider,
  powerdnsProvider,
  route53Provider,
] as DnsProviderKind[];

export function dnsProvider(name: string): DnsProviderKind | undefined {
  return DNS_PROVIDERS.find((k) => k.name === name);
}
