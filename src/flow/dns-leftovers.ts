/**
 * What DNS providers have added and not removed yet, per certificate, so that a run killed with -9
 * while the CA validates leaves no TXT record behind for good (the DNS side of
 * src/store/leftovers.ts):
 * ```
 * <home>/certs/<name>/dns-records.json
 *   {"version": 1, "records": [{"provider": {"provider": "rfc2136", "server": "ns1.example.com", ...},
 *     "record": {"fqdn": "_acme-challenge.example.com", "value": "...", "identifier": "example.com",
 *     "token": "..."}}]}
 * ```
 * `provider` is the renewal.json entry: no secrets; they come again from the environment or the
 * home's config when the record is removed. A record is noted (atomically) before the provider is
 * asked to add it and forgotten once it was removed. The next run that holds the certificate's
 * lock (wile issue, wile renew, wile cron's sweep) removes what a dead run noted, through the same
 * provider; what cannot be removed stays noted for the run after and is reported.
 */

import { join } from "node:path";
import type { DnsProvider, DnsRecord } from "../dns/provider";
import { readConfig } from "../store/config";
import { JournalFile, type LeftoverKind, readJournal } from "../store/leftovers";
import { homeLayout } from "../store/paths";
import type { DnsConfig } from "../store/renewal";
import type { Logger } from "../util/log";
import { isRecord } from "../util/text";
import { providerFor } from "./solvers";

export const DNS_JOURNAL = "dns-records.json";

export function dnsJournalPath(home: string, name: string): string {
  return join(homeLayout(home).certs, name, DNS_JOURNAL);
}

interface Noted {
  provider: DnsConfig;
  record: DnsRecord;
  /** When it was noted (ISO 8601): a record that cannot be removed is given up after GIVE_UP_MS. */
  since: string;
}

/** How long the runs after keep trying to remove a record (then it is reported for removal by hand). */
export const GIVE_UP_MS = 7 * 24 * 3600_000;

interface Record_ {
  records: Noted[];
}

const same = (a: Noted, provider: DnsConfig, record: DnsRecord) =>
  a.record.fqdn === record.fqdn &&
  a.record.value === record.value &&
  JSON.stringify(a.provider) === JSON.stringify(provider);

/** The record of one run; the caller holds the certificate's lock. */
export class DnsJournal {
  private readonly journal: JournalFile<Record_>;

  constructor(file: string) {
    this.journal = new JournalFile<Record_>(file, { records: [] }, (r) => r.records.length === 0);
  }

  add(provider: DnsConfig, record: DnsRecord, since = new Date().toISOString()): Promise<void> {
    return this.journal.change((r) => r.records.push({ provider, record, since }));
  }

  remove(provider: DnsConfig, record: DnsRecord): Promise<void> {
    return this.journal.change((r) => {
      r.records = r.records.filter((n) => !same(n, provider, record));
    });
  }
}

/**
 * `provider` noting each record in `journal` before it is added and forgetting it once removed. A
 * record whose adding failed is removed at once (the update may have been applied and its answer
 * lost); only if that fails too does it stay noted, for the next run.
 */
export function journaled(provider: DnsProvider, entry: DnsConfig, journal: DnsJournal): DnsProvider {
  return {
    describe: () => provider.describe(),
    present: async (record) => {
      await journal.add(entry, record);
      try {
        await provider.present(record);
      } catch (err) {
        try {
          await provider.cleanup(record);
          await journal.remove(entry, record);
        } catch {}
        throw err;
      }
    },
    cleanup: async (record) => {
      await provider.cleanup(record);
      await journal.remove(entry, record);
    },
  };
}

export interface DnsLeftoverDeps {
  logger: Logger;
  env: Record<string, string | undefined>;
  /** The home config's dns section (credentials). */
  dnsConfig?: Record<string, Record<string, unknown>> | undefined;
  /** wile's home, for providers that keep state there (acmesh). */
  home?: string;
}

/**
 * Removes the records a dead run noted in `file`, then forgets them. The caller holds the
 * certificate's lock. Returns what was removed (`fqdn value`). Never throws: a record that cannot
 * be removed (provider gone, credentials missing, server refusing) is logged and stays noted.
 */
export async function removeDnsLeftovers(file: string, deps: DnsLeftoverDeps): Promise<string[]> {
  const { logger } = deps;
  const rec = await readJournal(file, parseRecord, logger);
  if (!rec) return [];
  const removed: string[] = [];
  const now = Date.now();
  const journal = new DnsJournal(file);
  for (const n of rec.records) await journal.add(n.provider, n.record, n.since);
  for (const n of rec.records) {
    const what = `TXT ${n.record.fqdn} ${n.record.value}`;
    try {
      const provider = providerFor(
        n.provider,
        file,
        "records[].provider",
        deps,
        `for a record left in ${file}`,
      );
      await provider.cleanup(n.record);
      await journal.remove(n.provider, n.record);
      removed.push(what);
      logger.info(
        `removed ${what} (${provider.describe()}), left by an earlier run that was interrupted or failed`,
      );
    } catch (e) {
      const why = `could not remove ${what}, left by an earlier run (${n.provider.provider}): ${(e as Error).message}`;
      if (now - Date.parse(n.since) > GIVE_UP_MS) {
        logger.warn(`${why}; giving up after ${n.since}: remove it by hand if it is there`);
        await journal.remove(n.provider, n.record);
      } else logger.warn(`${why}; the next run tries again`);
    }
  }
  return removed;
}

/**
 * removeDnsLeftovers for sweepLeftovers (wile renew and cron); the home's config is read only when
 * there is something to remove.
 */
export function dnsLeftovers(home: string, env: Record<string, string | undefined>): LeftoverKind {
  return {
    file: DNS_JOURNAL,
    remove: async (file, logger) => {
      const dnsConfig = await readConfig(home).then(
        (c) => c.dns,
        (e: Error) => {
          logger.warn(`${e.message}; removing DNS records left by interrupted runs without its credentials`);
          return undefined;
        },
      );
      return removeDnsLeftovers(file, { logger, env, dnsConfig, home });
    },
  };
}

function parseRecord(v: unknown): Record_ {
  if (!isRecord(v) || v.version !== 1 || !Array.isArray(v.records)) throw new Error("not a DNS record list");
  const records = v.records.filter(
    (n): n is Noted =>
      isRecord(n) &&
      isRecord(n.provider) &&
      typeof n.provider.provider === "string" &&
      isRecord(n.record) &&
      typeof n.record.fqdn === "string" &&
      // A DNS name (the challenge record, or where a CNAME or --dns-alias sent it).
      /^[a-z0-9_](?:[a-z0-9_-]*\.)+[a-z0-9-]+$/i.test(n.record.fqdn) &&
      typeof n.record.value === "string" &&
      typeof n.record.identifier === "string" &&
      typeof n.record.token === "string" &&
      typeof n.since === "string" &&
      !Number.isNaN(Date.parse(n.since)),
  );
  return { records };
}
