import type { DnsProviderKind } from "./provider";
import { acmeDnsProvider } from "./providers/acme-dns";
import { cloudflareProvider } from "./providers/cloudflare";
import { desecProvider } from "./providers/desec";
import { digitaloceanProvider } from "./providers/digitalocean";
import { execProvider } from "./providers/exec";
import { hetznerProvider } from "./providers/hetzner";

/**
 * Every DNS provider, in the order help lists them. A new provider is one file in
 * src/dns/providers/ and one line here.
 */
export const DNS_PROVIDERS: readonly DnsProviderKind[] = [
  execProvider,
  cloudflareProvider,
  hetznerProvider,
  digitaloceanProvider,
  desecProvider,
  acmeDnsProvider,
] as DnsProviderKind[];

export function dnsProvider(name: string): DnsProviderKind | undefined {
  return DNS_PROVIDERS.find((k) => k.name === name);
}
