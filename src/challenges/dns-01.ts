/**
 * dns-01 (RFC 8555 8.4): a TXT record `_acme-challenge.<name>` holding
 * base64url(SHA-256(key authorization)), put in place and taken away by a DNS provider
 * (src/dns/provider.ts). A name and its wildcard share one record name, so two values sit there at
 * once: every record is added and removed by its value, never by its name alone.
 *
 * The flow (src/acme/obtain.ts) drives the solver as it drives http-01: present() for every
 * challenge of the order, then preflight() for each (here: the propagation check, run once for all
 * records presented so far), then the CA is told to validate; cleanup() for each presented
 * challenge whatever happened, and from the interrupt handler (src/flow/issue.ts).
 */
import { createHash } from "node:crypto";
import type { ChallengeContext, Solver } from "../acme/solver";
import type { DnsProvider, DnsRecord } from "../dns/provider";
import type { Logger } from "../util/log";

/** The TXT value for a key authorization: base64url(SHA-256(keyAuthorization)), no padding (RFC 8555 8.4). */
export function dns01TxtValue(keyAuthorization: string): string {
  return createHash("sha256").update(keyAuthorization, "utf8").digest("base64url");
}

/**
 * The record name (no trailing dot) for a name: `_acme-challenge.<name>`; a wildcard `*.x` (and the
 * authorization for it, whose identifier is `x`) uses `_acme-challenge.x`.
 */
export function dns01RecordName(name: string): string {
  const base = name.replace(/\.$/, "").replace(/^\*\./, "");
  return `_acme-challenge.${base}`;
}

/** The record a challenge needs. */
export function dns01Record(ctx: ChallengeContext): DnsRecord {
  return {
    fqdn: dns01RecordName(ctx.identifier.value),
    value: dns01TxtValue(ctx.keyAuthorization),
    identifier: ctx.identifier.value.replace(/^\*\./, ""),
    token: ctx.token,
  };
}

/**
 * Waits until the records are visible where the CA will look (part 2 of issue 11: the zone's
 * authoritative servers); throws WileError naming what lags when it gives up.
 */
export type PropagationCheck = (records: readonly DnsRecord[]) => Promise<void>;

export interface Dns01SolverOptions {
  provider: DnsProvider;
  /** Run once for the records presented since the last check, before the CA is asked. */
  check: PropagationCheck;
  /**
   * Where the record of `_acme-challenge.NAME` is written (a CNAME's target, an alias); default
   * the name itself. Asked once per record name; what it says is kept for cleanup.
   */
  locate?: (record: DnsRecord) => Promise<string>;
  logger: Logger;
}

/**
 * dns-01 through one provider. Keeps what it added (by record name and value), so cleanup removes
 * exactly that: a record whose present() failed was not added and is not removed, a record removed
 * once (the flow's cleanup and the interrupt handler may both ask) is not removed again.
 */
export class Dns01Solver implements Solver {
  readonly type = "dns-01";
  /**
   * `_acme-challenge.NAME` + value -> the record as written (its fqdn where locate() put it) and
   * how many challenges use it (the same value twice: one record).
   */
  private readonly added = new Map<string, { record: DnsRecord; uses: number; checked: boolean }>();
  /** `_acme-challenge.NAME` -> where its records go (one lookup for a name and its wildcard). */
  private readonly located = new Map<string, Promise<string>>();
  private checking: Promise<void> | undefined;

  constructor(private readonly opts: Dns01SolverOptions) {}

  async present(ctx: ChallengeContext): Promise<void> {
    const asked = dns01Record(ctx);
    const k = key(asked);
    const record = { ...asked, fqdn: await this.where(asked) };
    const known = this.added.get(k);
    if (known) {
      known.uses++;
      return;
    }
    this.opts.logger.info(`Adding TXT ${record.fqdn} (${this.opts.provider.describe()})`);
    await this.opts.provider.present(record);
    this.added.set(k, { record, uses: 1, checked: false });
  }

  private where(record: DnsRecord): Promise<string> {
    const { locate } = this.opts;
    if (!locate) return Promise.resolve(record.fqdn);
    let found = this.located.get(record.fqdn);
    if (!found) {
      found = locate(record);
      this.located.set(record.fqdn, found);
    }
    return found;
  }

  /** The propagation check, once for every record not checked yet; later calls wait for the same one. */
  async preflight(ctx: ChallengeContext): Promise<void> {
    for (;;) {
      if (this.checking) await this.checking;
      const entry = this.added.get(key(dns01Record(ctx)));
      if (!entry || entry.checked) return;
      const batch = [...this.added.values()].filter((e) => !e.checked);
      this.checking = (async () => {
        try {
          await this.opts.check(batch.map((e) => e.record));
          for (const e of batch) e.checked = true;
        } finally {
          this.checking = undefined;
        }
      })();
      await this.checking;
    }
  }

  async cleanup(ctx: ChallengeContext): Promise<void> {
    const k = key(dns01Record(ctx));
    const entry = this.added.get(k);
    if (!entry) return;
    if (--entry.uses > 0) return;
    // Forgotten first: a second cleanup (interrupt and flow at once) finds nothing to remove.
    this.added.delete(k);
    const { record } = entry;
    this.opts.logger.debug(`Removing TXT ${record.fqdn} ${record.value}`);
    await this.opts.provider.cleanup(record);
  }

  /** What is in place now (for tests and the interrupt message). */
  records(): DnsRecord[] {
    return [...this.added.values()].map((e) => e.record);
  }
}

function key(r: DnsRecord): string {
  return `${r.fqdn.toLowerCase()}\0${r.value}`;
}
