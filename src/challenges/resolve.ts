import { isIP } from "node:net";
import { UsageError } from "../util/errors";

/**
 * `--resolve name:port:address`, shaped like curl's option. wile's meaning: the http-01 preflight
 * for `name` connects to `address:port` instead of resolving `name` by DNS and using port 80, so an
 * operator behind a port-forward (or a test with a web server on a free port) can point it at the
 * right place. The Host header stays `name`. The rule also applies to redirects to `name`: plain
 * http on the default port goes to address:port; any other port or https goes to address with the
 * URL's own port. It never changes what the CA itself contacts.
 */
export interface ResolveRule {
  host: string;
  port: number;
  address: string;
}

const EXAMPLE = "--resolve example.com:8080:127.0.0.1 or --resolve example.com:80:[2001:db8::1]";

/** Parse "name:port:address"; the address may be IPv4, IPv6 in brackets, or bare IPv6. */
export function parseResolve(spec: string): ResolveRule {
  const bad = (why: string) =>
    new UsageError(`Invalid --resolve "${spec}": ${why}.`, {
      hint: `Write it as name:port:address, e.g. ${EXAMPLE}.`,
    });
  const first = spec.indexOf(":");
  const second = first < 0 ? -1 : spec.indexOf(":", first + 1);
  if (second < 0) throw bad("expected name:port:address");
  const host = spec.slice(0, first).toLowerCase();
  const portText = spec.slice(first + 1, second);
  let address = spec.slice(second + 1);
  if (!/^[a-z0-9.*_-]+$/.test(host) || host.startsWith(".")) throw bad(`"${host}" is not a host name`);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw bad(`port "${portText}" is not 1-65535`);
  if (address.startsWith("[") && address.endsWith("]")) address = address.slice(1, -1);
  if (isIP(address) === 0) throw bad(`"${address}" is not an IP address`);
  return { host, port, address };
}

/** The rule for `host`, if any (host names compare case-insensitively). */
export function findResolve(rules: readonly ResolveRule[], host: string): ResolveRule | undefined {
  const h = host.toLowerCase();
  return rules.find((r) => r.host === h);
}
