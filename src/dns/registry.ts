import type { DnsProviderKind } from "./provider";
import { execProvider } from "./providers/exec";
import { rfc2136Provider } from "./providers/rfc2136";

/**
 * Every DNS provider, in the order help lists them. A new provider is one file in
 * src/dns/providers/ and one line here.
 */
export const DNS_PROVIDERS: readonly DnsProviderKind[] = [execProvider, rfc2136Provider] as DnsProviderKind[];

export function dnsProvider(name: string): DnsProviderKind | undefined {
  return DNS_PROVIDERS.find((k) => k.name === name);
}
