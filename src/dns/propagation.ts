/**
 * The propagation check (issue 11 part 2): before the CA is asked to look at a TXT record, wile
 * looks where the CA will look and waits until every server there shows it.
 *
 *   1. Where the record goes (recordLocator, before the provider writes it): `--dns-alias ZONE`
 *      puts `_acme-challenge.NAME`'s record at `_acme-challenge.ZONE` (acme.sh's
 *      `--challenge-alias`); otherwise a CNAME at `_acme-challenge.NAME` is followed (lego's
 *      default), up to MAX_CNAMES, loops refused.
 *   2. Whom to ask (authority): the zone of the name, found by walking up with SOA queries to a
 *      recursive resolver (the system's, `dns.getServers()`), then the zone's NS set and each NS
 *      host's addresses (glue, else A and, when this host has IPv6, AAAA). `--dns-resolvers`
 *      replaces all that with the servers given (asked with recursion desired).
 *   3. Waiting (waitForTxt): every server asked directly (UDP, TCP when truncated), at once and
 *      then after 250 ms, 500 ms, ... up to POLL_CAP_MS, only those not showing the value yet,
 *      until all do or `--dns-timeout` (or the run's `--timeout`) runs out: then a WileError
 *      naming each lagging server and what it answered.
 */
import { getServers } from "node:dns";
import { networkInterfaces } from "node:os";
import { UsageError, WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { printable } from "../util/text";
import type { DnsRecord } from "./provider";
import { type DnsServer, parseServer, query, serverLabel } from "./transport";
import { DnsError, type Message, normalName, rcodeName, sameName, TYPE } from "./wire";

/** --dns-timeout's default, in seconds. */
export const DEFAULT_DNS_TIMEOUT_S = 180;
/** How many CNAMEs are followed from `_acme-challenge.NAME` before giving up. */
export const MAX_CNAMES = 8;
const POLL_FIRST_MS = 250;
const POLL_CAP_MS = 4000;
/** One query's timeout (the transport resends UDP within it). */
const QUERY_TIMEOUT_MS = 2000;

/** What the check does with the network and the clock (tests replace it). */
export interface DnsIo {
  query: typeof query;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  /** The system's recursive resolvers. */
  systemResolvers: () => DnsServer[];
  /** Whether AAAA addresses of name servers are worth asking (this host has a global IPv6 address). */
  ipv6: () => boolean;
}

export const realIo: DnsIo = {
  query,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  now: () => Date.now(),
  systemResolvers: () => getServers().map((s) => parseServer(s)),
  ipv6: () =>
    Object.values(networkInterfaces()).some((list) =>
      (list ?? []).some((a) => a.family === "IPv6" && !a.internal && !/^fe80:/i.test(a.address)),
    ),
};

/** One server to ask, as messages name it. */
export interface Target {
  server: DnsServer;
  /** `ns1.example.com (192.0.2.1)` or `127.0.0.1:5353`. */
  label: string;
  recursive: boolean;
}

/** renewal.json's `challenge.dnsCheck`: how the propagation check runs for this certificate. */
export interface DnsCheckSettings {
  /** Seconds to wait for every server (--dns-timeout). */
  timeout: number;
  /** --dns-resolvers, as given (HOST[:PORT]): asked instead of the authoritative servers. */
  resolvers?: string[];
  /** --no-dns-check. */
  skip?: boolean;
}

/** --dns-timeout: whole seconds, 1 to 86400 (UsageError otherwise). */
export function parseDnsTimeout(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 86_400) {
    throw new UsageError(
      `--dns-timeout "${printable(text, 40)}" is not a whole number of seconds from 1 to 86400`,
      {
        hint: `Example: --dns-timeout 300 (the default is ${DEFAULT_DNS_TIMEOUT_S}).`,
      },
    );
  }
  return n;
}

/** --dns-resolvers: comma-separated HOST[:PORT] ([IPv6]:PORT); throws UsageError (parseServer) for a bad one. */
export function parseResolverList(text: string): DnsServer[] {
  const parts = text.split(",").map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => p === "")) {
    throw new UsageError(`--dns-resolvers "${printable(text, 100)}" has an empty entry`, {
      hint: "Example: --dns-resolvers 192.0.2.53,[2001:db8::53]:5353",
    });
  }
  return parts.map((p) => parseServer(p));
}

/** The first answer (NOERROR or NXDOMAIN) from the resolvers, asked in turn; DnsError listing each failure. */
async function askResolvers(
  io: DnsIo,
  resolvers: readonly DnsServer[],
  name: string,
  type: number,
  timeoutMs = QUERY_TIMEOUT_MS,
): Promise<Message> {
  const failures: string[] = [];
  for (const r of resolvers) {
    try {
      const m = await io.query(r, name, type, { recursive: true, timeoutMs });
      if (m.rcode === 0 || m.rcode === 3) return m;
      failures.push(`${serverLabel(r)} answered ${rcodeName(m.rcode)}`);
    } catch (e) {
      failures.push(printable((e as Error).message, 200));
    }
  }
  throw new DnsError(`no DNS resolver answered a query for ${name}: ${failures.join("; ")}`, {
    hint: "Check this host's resolvers (/etc/resolv.conf), or name working ones with --dns-resolvers.",
  });
}

/** The zone holding `name`: the owner of the SOA a recursive resolver gives for it or a parent. */
export async function findZoneOf(io: DnsIo, resolvers: readonly DnsServer[], name: string): Promise<string> {
  const labels = normalName(name).split(".");
  for (let i = 0; i < labels.length; i++) {
    const candidate = labels.slice(i).join(".");
    const m = await askResolvers(io, resolvers, candidate, TYPE.SOA);
    if (m.answers.some((rr) => rr.type === TYPE.SOA && sameName(rr.name, candidate))) return candidate;
    // An alias: the SOA that follows belongs to the target's zone, not to this name's.
    if (m.answers.some((rr) => rr.type === TYPE.CNAME && sameName(rr.name, candidate))) continue;
    const soa = m.authorities.find(
      (rr) =>
        rr.type === TYPE.SOA &&
        (sameName(rr.name, candidate) || candidate.endsWith(`.${normalName(rr.name)}`)),
    );
    if (soa && normalName(soa.name) !== "") return normalName(soa.name);
  }
  throw new WileError(`found no DNS zone holding ${name}: no SOA record for it or any parent`, {
    hint: "Check that the name is delegated (dig SOA NAME), or name the servers to ask with --dns-resolvers.",
  });
}

/** The zone's authoritative servers (NS set, each address), to be asked without recursion. */
export async function authoritativeServers(
  io: DnsIo,
  resolvers: readonly DnsServer[],
  zone: string,
  logger: Logger,
): Promise<Target[]> {
  const ns = await askResolvers(io, resolvers, zone, TYPE.NS);
  const hosts = [
    ...new Set(
      ns.answers.flatMap((rr) =>
        rr.data?.type === "NS" && sameName(rr.name, zone) ? [normalName(rr.data.name)] : [],
      ),
    ),
  ];
  if (hosts.length === 0) {
    throw new WileError(
      `the DNS zone ${zone} has no NS records (asked ${resolvers.map(serverLabel).join(", ")})`,
      {
        hint: "Name the servers to ask with --dns-resolvers, or skip the check with --no-dns-check.",
      },
    );
  }
  const types: number[] = io.ipv6() ? [TYPE.A, TYPE.AAAA] : [TYPE.A];
  const addressesOf = (m: Message, host: string) =>
    [...m.answers, ...m.additionals].flatMap((rr) =>
      (rr.data?.type === "A" || rr.data?.type === "AAAA") &&
      types.includes(rr.type) &&
      (sameName(rr.name, host) || m.answers.some((a) => a.type === TYPE.CNAME))
        ? [rr.data.address]
        : [],
    );
  const targets: Target[] = [];
  await Promise.all(
    hosts.map(async (host) => {
      let addrs = addressesOf(ns, host);
      if (addrs.length === 0) {
        const answers = await Promise.allSettled(types.map((t) => askResolvers(io, resolvers, host, t)));
        addrs = answers.flatMap((a) => (a.status === "fulfilled" ? addressesOf(a.value, host) : []));
      }
      if (addrs.length === 0)
        logger.warn(`the name server ${host} of ${zone} has no address this host can reach; not asking it`);
      for (const a of new Set(addrs))
        targets.push({ server: { host: a, port: 53 }, label: `${host} (${a})`, recursive: false });
    }),
  );
  if (targets.length === 0) {
    throw new WileError(
      `no name server of ${zone} (${hosts.join(", ")}) has an address this host can reach`,
      {
        hint: "Name the servers to ask with --dns-resolvers, or skip the check with --no-dns-check.",
      },
    );
  }
  return targets.sort((a, b) => a.label.localeCompare(b.label));
}

/** The given servers as targets (asked with recursion desired, as --dns-resolvers may name resolvers). */
function givenTargets(servers: readonly DnsServer[]): Target[] {
  return servers.map((s) => ({ server: s, label: serverLabel(s), recursive: true }));
}

/** What a server shows at `fqdn`: undefined when `accept` approves, else what is wrong. */
async function look(
  io: DnsIo,
  t: Target,
  fqdn: string,
  accept: (values: string[]) => string | undefined,
  timeoutMs: number,
): Promise<string | undefined> {
  let m: Message;
  try {
    m = await io.query(t.server, fqdn, TYPE.TXT, { recursive: t.recursive, timeoutMs });
  } catch (e) {
    return `error: ${printable((e as Error).message, 200)}`;
  }
  if (m.rcode !== 0 && m.rcode !== 3) return `answered ${rcodeName(m.rcode)}`;
  // Asked as the zone's server, it must answer with authority: else it is a lame delegation.
  if (!t.recursive && !m.aa) return "answered without authority (not serving the zone: a lame delegation?)";
  const values = m.answers.flatMap((rr) => (rr.data?.type === "TXT" ? [rr.data.strings.join("")] : []));
  const alias = m.answers.find((rr) => rr.data?.type === "CNAME" && sameName(rr.name, fqdn));
  if (values.length === 0 && alias?.data?.type === "CNAME") {
    return `an alias (CNAME) of ${printable(alias.data.name, 120)}, no TXT record`;
  }
  return accept(values);
}

/**
 * Waits until every server (`opts.servers`, or the authoritative ones of fqdn's zone) answers TXT
 * values at `fqdn` that `accept` approves (it returns undefined when fine, or a short description of
 * what is wrong). Checks at once; then only the servers still lagging, after growing intervals;
 * gives up after `timeoutMs` or at `deadline` (ms since the epoch), whichever is first, with a
 * WileError naming each lagging server and its last answer. `what` names the record in messages.
 */
export async function waitForTxt(
  fqdn: string,
  accept: (values: string[]) => string | undefined,
  opts: {
    servers?: DnsServer[];
    timeoutMs: number;
    deadline?: number;
    logger: Logger;
    what: string;
    io?: DnsIo;
  },
): Promise<void> {
  const io = opts.io ?? realIo;
  const { logger } = opts;
  const start = io.now();
  const end = Math.min(start + opts.timeoutMs, opts.deadline ?? Number.POSITIVE_INFINITY);
  let targets: Target[];
  if (opts.servers && opts.servers.length > 0) {
    targets = givenTargets(opts.servers);
  } else {
    const resolvers = io.systemResolvers();
    if (resolvers.length === 0) {
      throw new WileError("this host has no DNS resolver configured, so the zone's servers cannot be found", {
        hint: "Name the servers to ask with --dns-resolvers, or skip the check with --no-dns-check.",
      });
    }
    const zone = await findZoneOf(io, resolvers, fqdn);
    targets = await authoritativeServers(io, resolvers, zone, logger);
    logger.debug(`${fqdn} is in the zone ${zone}, served by ${targets.map((t) => t.label).join(", ")}`);
  }
  const lagging = new Map<Target, string>(targets.map((t) => [t, "not asked yet"]));
  let interval = POLL_FIRST_MS;
  let said = false;
  for (;;) {
    const queryTimeout = Math.max(200, Math.min(QUERY_TIMEOUT_MS, end - io.now()));
    const results = await Promise.all(
      [...lagging.keys()].map(async (t) => [t, await look(io, t, fqdn, accept, queryTimeout)] as const),
    );
    for (const [t, problem] of results) {
      if (problem === undefined) lagging.delete(t);
      else lagging.set(t, problem);
    }
    if (lagging.size === 0) {
      if (said)
        logger.info(
          `${opts.what} is visible at every server after ${((io.now() - start) / 1000).toFixed(1)} s`,
        );
      else logger.debug(`${opts.what} is visible at ${targets.map((t) => t.label).join(", ")}`);
      return;
    }
    const left = end - io.now();
    if (left <= 0) break;
    if (!said) {
      said = true;
      logger.info(
        `Waiting until ${opts.what} is visible at ${lagging.size === targets.length ? "" : `${lagging.size} of `}${targets.length} DNS server(s) (up to ${Math.ceil(left / 1000)} s)`,
      );
    }
    logger.debug(`still waiting for ${[...lagging.keys()].map((t) => t.label).join(", ")}`);
    await io.sleep(Math.min(interval, left));
    interval = Math.min(interval * 2, POLL_CAP_MS);
  }
  const byRun = opts.deadline !== undefined && opts.deadline < start + opts.timeoutMs;
  const lines = [...lagging].map(([t, problem]) => `  ${t.label}: ${problem}`);
  throw new WileError(
    `${opts.what} is not visible at every DNS server after ${Math.round((io.now() - start) / 1000)} s (${byRun ? "the run's --timeout ran out" : "--dns-timeout"}); lagging:\n${lines.join("\n")}`,
    {
      hint:
        "The CA was not asked. A server that never catches up is often a secondary the primary does not NOTIFY (check its zone transfers); a resolver may hold an older answer until its TTL or negative-caching time (the SOA minimum) ends. " +
        "Run again later or with a longer --dns-timeout, name the servers the CA will ask with --dns-resolvers, or skip the check with --no-dns-check.",
    },
  );
}

/** dns-01's accept: every expected value present (others may sit beside them). */
export function allValues(expected: readonly string[]): (values: string[]) => string | undefined {
  return (values) => {
    const missing = expected.filter((v) => !values.includes(v));
    if (missing.length === 0) return undefined;
    if (values.length === 0) return "no TXT record";
    const shown = values.slice(0, 4).map((v) => `"${printable(v, 60)}"`);
    return `other values (${shown.join(", ")}${values.length > 4 ? ", ..." : ""}); ${missing.length} of the ${expected.length} expected missing`;
  };
}

/**
 * The PropagationCheck of dns-01 (src/challenges/dns-01.ts) for one certificate: every record name
 * in parallel, each with all the values presented there. `deadline` is the run's (--timeout).
 */
export function propagationCheck(
  settings: DnsCheckSettings,
  ctx: { logger: Logger; deadline?: number; io?: DnsIo },
): (records: readonly DnsRecord[]) => Promise<void> {
  const servers = settings.resolvers?.map((s) => parseServer(s));
  return async (records) => {
    const byName = new Map<string, string[]>();
    for (const r of records) byName.set(r.fqdn, [...(byName.get(r.fqdn) ?? []), r.value]);
    if (settings.skip) {
      ctx.logger.info(
        `Not checking that ${[...byName.keys()].join(", ")} can be seen in DNS (--no-dns-check); asking the CA now`,
      );
      return;
    }
    const results = await Promise.allSettled(
      [...byName].map(([fqdn, values]) =>
        waitForTxt(fqdn, allValues(values), {
          ...(servers ? { servers } : {}),
          timeoutMs: settings.timeout * 1000,
          ...(ctx.deadline !== undefined ? { deadline: ctx.deadline } : {}),
          logger: ctx.logger,
          what: `the TXT record ${fqdn}`,
          ...(ctx.io ? { io: ctx.io } : {}),
        }),
      ),
    );
    const failed = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    if (failed.length === 1) throw failed[0];
    if (failed.length > 1) {
      const first = failed[0] as WileError;
      throw new WileError(
        failed.map((e) => (e as Error).message).join("\n"),
        first.hint ? { hint: first.hint } : {},
      );
    }
  };
}

/**
 * Where the record of `_acme-challenge.NAME` is written: `_acme-challenge.<alias>` when the name
 * has an alias (--dns-alias, acme.sh's --challenge-alias), else the end of the CNAME chain that
 * starts there (lego), else the name itself. `lenient` (--no-dns-check): a failed lookup is a
 * warning and the name itself is used.
 */
export function recordLocator(opts: {
  resolvers?: string[];
  alias?: (identifier: string) => string | undefined;
  lenient?: boolean;
  logger: Logger;
  io?: DnsIo;
}): (record: DnsRecord) => Promise<string> {
  const io = opts.io ?? realIo;
  return async (record) => {
    const alias = opts.alias?.(record.identifier);
    if (alias) {
      const target = `_acme-challenge.${normalName(alias)}`;
      opts.logger.info(`${record.fqdn} goes to ${target} (--dns-alias ${alias})`);
      return target;
    }
    const resolvers = opts.resolvers?.map((s) => parseServer(s)) ?? io.systemResolvers();
    try {
      const target = await followCnames(io, resolvers, record.fqdn);
      if (target !== record.fqdn)
        opts.logger.info(`${record.fqdn} is an alias (CNAME) of ${target}: the record goes there`);
      return target;
    } catch (e) {
      if (!opts.lenient || !(e instanceof DnsError)) throw e;
      opts.logger.warn(
        `could not look up whether ${record.fqdn} is an alias (${e.message}); writing the record there`,
      );
      return record.fqdn;
    }
  };
}

/** The end of the CNAME chain starting at `name` (the name itself when it is no alias). */
export async function followCnames(
  io: DnsIo,
  resolvers: readonly DnsServer[],
  name: string,
): Promise<string> {
  const chain = [normalName(name)];
  for (;;) {
    const current = chain[chain.length - 1] as string;
    let m: Message;
    try {
      m = await askResolvers(io, resolvers, current, TYPE.CNAME);
    } catch (e) {
      throw new DnsError(
        `could not find out whether ${current} is an alias (CNAME): ${(e as Error).message}`,
        {
          hint: "Name working DNS servers with --dns-resolvers, or say where the record goes with --dns-alias.",
        },
      );
    }
    const cname = m.answers.find((rr) => rr.data?.type === "CNAME" && sameName(rr.name, current));
    if (cname?.data?.type !== "CNAME") return current;
    const next = normalName(cname.data.name);
    if (chain.includes(next)) {
      throw new WileError(`the CNAMEs from ${chain[0]} form a loop: ${[...chain, next].join(" -> ")}`, {
        hint: "Fix the CNAME records in DNS: the last one must point at a name that holds TXT records.",
      });
    }
    chain.push(next);
    if (chain.length > MAX_CNAMES + 1) {
      throw new WileError(
        `more than ${MAX_CNAMES} CNAMEs follow each other from ${chain[0]}: ${chain.join(" -> ")}`,
        {
          hint: "Point the CNAME of the challenge name straight at the name that holds the TXT records.",
        },
      );
    }
  }
}
