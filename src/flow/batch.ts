/**
 * `wile issue --batch`: many certificates in one process, one account and one keep-alive
 * connection to the CA, up to `parallel` at a time. Each line is what `wile issue` does for one
 * certificate (the lock, the not-due check, obtainAndDeploy: leftovers cleanup, order, checked
 * chain, renewal.json, deploy, state.json); a line that fails never stops the others.
 *
 * Rate limits: an answer `urn:ietf:params:acme:error:rateLimited` closes the gate for new orders
 * until the CA's Retry-After (RFC 8555 6.6; 60 s when it gives none). Orders already under way go
 * on (their authorizations, finalize and download are not new orders); a certificate about to
 * order waits at the gate, if the wait fits in its --timeout, and is reported with the CA's time
 * otherwise, without asking the CA again. The line that was refused is tried again once the gate
 * opens (at most MAX_ATTEMPTS orders in all). The CA does not say which of its limits applies to
 * which names, so the pause holds for every line of the run: never hammering the CA wins over
 * finishing early.
 *
 * A CA that stops answering: once `max(3, parallel)` lines in a row have failed because the CA
 * could not be reached (NetworkError: refused, reset, no answer in time, after the client's
 * retries), no more orders are sent in this run; the lines left are reported with that error
 * (lines not due are still skipped). One certificate issued in between resets the count.
 */
import type { AcmeClient, AcmeResponse, Signer } from "../acme/client";
import { AcmeProblem } from "../acme/problem";
import { NetworkError } from "../acme/transport";
import { CertStore } from "../store/certs";
import type { RenewalConfig } from "../store/renewal";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { withCertificateLock } from "./cert-lock";
import { obtainAndDeploy } from "./lifecycle";
import { checkNotDue } from "./not-due";

/** One certificate of the batch, checked (UsageError-free) before anything is contacted. */
export interface BatchItem {
  /** Its line number in the file. */
  line: number;
  cfg: RenewalConfig;
  /** --force: issue even if the current certificate is not due. */
  force: boolean;
}

export interface BatchResult {
  line: number;
  name: string;
  domains: string[];
  status: "issued" | "skipped" | "failed";
  serial?: string;
  notAfter?: string;
  path?: string;
  /** Why it was skipped, or what failed (first the CA's words, as in `wile issue`). */
  reason?: string;
  hint?: string;
  /** A rate limit: when the CA allows new orders again (ISO time). */
  retryAfter?: string;
  /** Issued and installed, but the deploy failed (recorded as pending: cron deploys it again). */
  deployError?: string;
}

/** The time source of the rate-limit pause (a fake one in tests). */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** A rateLimited answer without Retry-After pauses new orders this long. */
export const DEFAULT_RATE_LIMIT_PAUSE_MS = 60_000;
/** Orders per line at most: the first, and one after each of two rate-limit pauses. */
export const MAX_ATTEMPTS = 3;

/** Not ordered: the CA asked for no new orders until `retryAt`, later than this certificate may wait. */
export class RateLimitPause extends WileError {
  constructor(
    readonly retryAt: Date,
    server: string,
  ) {
    super(
      `not ordered: the CA at ${server} answered an earlier order of this run with rateLimited and asks for no new orders before ${retryAt.toISOString()} (Retry-After), which is past this certificate's --timeout`,
      {
        hint: `Run the batch again after ${retryAt.toISOString()}: what was issued is skipped then. See the CA's rate limits (Let's Encrypt: https://letsencrypt.org/docs/rate-limits/).`,
      },
    );
  }
}

/** When new orders may be sent again, after the CA said rateLimited; or never, after it stopped answering. */
export class OrderGate {
  private until = 0;
  private unanswered = 0;
  private down: WileError | null = null;
  constructor(
    private readonly clock: Clock,
    private readonly server: string,
    private readonly downAfter: number,
  ) {}

  /** A line's outcome: `error` undefined when it was issued. */
  record(error: unknown): void {
    if (error === undefined) this.unanswered = 0;
    else if (error instanceof NetworkError && ++this.unanswered >= this.downAfter && !this.down) {
      this.down = new WileError(
        `not ordered: the CA at ${this.server} did not answer for the last ${this.unanswered} certificates of this run (the last: ${error.message.split("\n")[0]}); no more orders were sent`,
        {
          hint: "Check the CA's status and this machine's connection to it, then run the batch again: what was issued is skipped.",
        },
      );
    }
  }

  /** The CA refused with rateLimited: no new order for `retryAfterMs` (or the default). */
  close(retryAfterMs: number | null): void {
    this.until = Math.max(this.until, this.clock.now() + (retryAfterMs ?? DEFAULT_RATE_LIMIT_PAUSE_MS));
  }

  /** When the gate opens again, while it is closed. */
  closedUntil(): Date | null {
    return this.until > this.clock.now() ? new Date(this.until) : null;
  }

  /** Waits until new orders are allowed; RateLimitPause when that is more than `maxWaitMs` away. */
  async pass(maxWaitMs: number): Promise<void> {
    if (this.down) throw this.down;
    for (;;) {
      const wait = this.until - this.clock.now();
      if (wait <= 0) return;
      if (wait > maxWaitMs) throw new RateLimitPause(new Date(this.until), this.server);
      await this.clock.sleep(wait);
    }
  }
}

/**
 * `client` with its new orders going through `gate`: a newOrder waits while the gate is closed
 * (within what is left of the client's deadline), and a rateLimited answer to any request closes it.
 */
export function gatedClient(client: AcmeClient, gate: OrderGate, newOrderUrl: string): AcmeClient {
  const gated = Object.create(client) as AcmeClient;
  gated.post = async <T>(url: string, payload: unknown, signer: Signer, accept?: string) => {
    if (url === newOrderUrl) await gate.pass(client.deadlineAt - Date.now());
    try {
      return (await client.post.call(gated, url, payload, signer, accept)) as AcmeResponse<T>;
    } catch (err) {
      if (err instanceof AcmeProblem && err.is("rateLimited")) gate.close(err.retryAfterMs);
      throw err;
    }
  };
  return gated;
}

export interface BatchOptions {
  home: string;
  /** The line's progress (the CLI prefixes it with the certificate's name). */
  loggerFor: (item: BatchItem) => Logger;
  /** The run's one client for the CA (unscoped; each line gets its own deadline on it). */
  client: AcmeClient;
  parallel: number;
  /** --timeout: the deadline of each certificate, and the longest rate-limit pause it waits out. */
  timeoutMs: number;
  verifyWaitMs: number;
  /** Called as each line is done, in the order they finish. */
  onResult: (result: BatchResult) => void;
  clock?: Clock;
}

/** Issues every item, `parallel` at a time; the results in line order. Throws only if state.json cannot be written. */
export async function issueBatch(items: BatchItem[], opts: BatchOptions): Promise<BatchResult[]> {
  const clock = opts.clock ?? realClock;
  const server = items[0]?.cfg.server ?? opts.client.directoryUrl;
  const gate = new OrderGate(clock, new URL(server).host, Math.max(3, opts.parallel));
  const newOrderUrl = (await opts.client.directory()).newOrder;
  const queue = items.map((item) => ({ item, attempts: 0 }));
  const results: BatchResult[] = [];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      next.attempts++;
      const r = await issueLine(next.item, opts, clock, gate, newOrderUrl);
      // Refused for a rate limit: again after the pause (the gate decides whether it may wait).
      if (r.retry && next.attempts < MAX_ATTEMPTS) {
        const when = r.result.retryAfter ? ` (${r.result.retryAfter})` : "";
        opts.loggerFor(next.item).info(`rate limited; ordering again once the CA allows it${when}`);
        queue.unshift(next);
        continue;
      }
      results.push(r.result);
      opts.onResult(r.result);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.parallel, items.length)) }, worker));
  return results.sort((a, b) => a.line - b.line);
}

async function issueLine(
  item: BatchItem,
  opts: BatchOptions,
  clock: Clock,
  gate: OrderGate,
  newOrderUrl: string,
): Promise<{ result: BatchResult; retry: boolean }> {
  const { cfg } = item;
  const logger = opts.loggerFor(item);
  const base = { line: item.line, name: cfg.name, domains: cfg.identifiers.map((i) => i.value) };
  const failed = (err: unknown, extra: Partial<BatchResult> = {}): BatchResult => ({
    ...base,
    status: "failed",
    reason: err instanceof Error ? err.message : String(err),
    ...(err instanceof WileError && err.hint ? { hint: err.hint } : {}),
    ...extra,
  });
  const store = new CertStore(opts.home);
  try {
    return await withCertificateLock(opts.home, cfg.name, "wile issue --batch", async () => {
      if (!item.force) {
        const certPem = await store.readCurrentCert(cfg.name);
        if (certPem) {
          const { notDue, namesDiffer } = checkNotDue(certPem, `${store.dir(cfg.name)}/cert.pem`, cfg);
          if (notDue) return { result: { ...base, status: "skipped", reason: notDue.message }, retry: false };
          if (namesDiffer) logger.info("the names differ from the current certificate's; issuing a new one");
        }
      }
      // Nothing of this line reaches the CA before the gate lets it: its deadline starts after.
      await gate.pass(opts.timeoutMs);
      const client = gatedClient(opts.client.withDeadline(opts.timeoutMs), gate, newOrderUrl);
      const previous = await store.readRenewal(cfg.name).catch(() => null);
      const step = await obtainAndDeploy(previous ? { ...cfg, createdAt: previous.createdAt } : cfg, {
        home: opts.home,
        logger,
        now: new Date(),
        verifyWaitMs: opts.verifyWaitMs,
        reason: "issued",
        client,
      });
      const { issued, error } = step;
      gate.record(issued ? undefined : error);
      if (issued) {
        const done = { serial: issued.serial, notAfter: issued.notAfter.toISOString(), path: issued.path };
        logger.info(`issued, serial ${issued.serial}, valid until ${done.notAfter}`);
        if (error === undefined) return { result: { ...base, status: "issued", ...done }, retry: false };
        // Installed, but not deployed: state.json says so, and cron deploys it again.
        const deployError = error instanceof Error ? error.message : String(error);
        return { result: failed(error, { ...done, deployError }), retry: false };
      }
      const limited =
        error instanceof RateLimitPause || (error instanceof AcmeProblem && error.is("rateLimited"));
      const until = gate.closedUntil();
      return {
        result: failed(error, limited && until ? { retryAfter: until.toISOString() } : {}),
        // Again after the pause, if this line may wait that long; else the CA's own words stand.
        retry: limited && (until === null || until.getTime() - clock.now() <= opts.timeoutMs),
      };
    });
  } catch (err) {
    // The lock is held by another run, the store cannot be written, or the gate stays closed too long.
    return {
      result: failed(err, err instanceof RateLimitPause ? { retryAfter: err.retryAt.toISOString() } : {}),
      retry: false,
    };
  }
}
