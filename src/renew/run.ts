import { type CertInfo, parseCertificate } from "../crypto/x509";
import { CertificateBusyError, withCertificateLock } from "../flow/cert-lock";
import type { ClientPool } from "../flow/client";
import { type Outcome, obtainAndDeploy, recordFailure, redeploy } from "../flow/lifecycle";
import { CertStore } from "../store/certs";
import { emptyState, type RenewalState, readState, writeState } from "../store/state";
import { notWritable } from "../store/writable";
import type { Logger } from "../util/log";
import { summarize } from "../util/notify";
import { fetchRenewalWindow } from "./ari";
import { type Decision, decide } from "./decide";
import type { RunIndex } from "./run-index";
import { loadCertificate } from "./status";

export interface RenewOptions {
  home: string;
  /** Shared across certificates: one client (directory, connection, nonces) per CA. */
  pool: ClientPool;
  logger: Logger;
  force: boolean;
  now: Date;
  /** When the next scheduled run is expected: ARI renews now if its moment falls before then. */
  nextRun: Date;
  /** How long a deploy's verify waits for each service (CommandContext.verifyWaitMs). */
  verifyWaitMs: number;
  /** The deadline for everything said to the CA about this certificate (ARI included), in ms. */
  timeoutMs: number;
  /** What runs, for whoever finds a certificate's lock held: "wile cron". */
  command: string;
  /** The index of a run over every certificate (run-index.ts): told what each full check found. */
  index?: RunIndex;
}

/**
 * Checks one certificate and, when it is due, renews it replaying its renewal.json (decide, then
 * the lifecycle step); a certificate whose deploy failed earlier is deployed again. Never throws:
 * a failure is an outcome, recorded in state.json with the time of the next attempt (backing off),
 * and the certificate and key in place stay untouched.
 */
export async function renewOne(name: string, opts: RenewOptions): Promise<Outcome> {
  const warnings: string[] = [];
  let outcome: Outcome;
  try {
    outcome = await withCertificateLock(opts.home, name, opts.command, () =>
      checkAndRenew(name, opts, warnings),
    );
  } catch (err) {
    // Another run has it: its outcome is that run's to record, not a failure of the certificate.
    if (err instanceof CertificateBusyError)
      return { name, status: "failed", reason: err.message, ...(err.hint ? { hint: err.hint } : {}) };
    const state = await readState(opts.home, name).catch(() => emptyState());
    return recordFailure(opts.home, name, state, err, opts.now, opts.logger);
  }
  return warnings.length > 0 ? { ...outcome, warnings } : outcome;
}

async function checkAndRenew(name: string, opts: RenewOptions, warnings: string[]): Promise<Outcome> {
  const { home, logger, now } = opts;
  const store = new CertStore(home);
  // Read once, by loadCertificate; recordFailure needs it too, so that a failure never wipes the
  // failure count.
  let state: RenewalState | undefined;
  const started = opts.index?.begin(name);
  try {
    const loaded = await loadCertificate(home, name, { force: opts.force });
    const { cfg, certPem } = loaded;
    state = loaded.state;
    if (loaded.stateDamage) {
      // A cache: repaired by writing it afresh, and said once (cron mails stderr).
      const repaired = `${loaded.stateDamage}; rewritten`;
      await writeState(home, name, state);
      logger.warn(repaired);
      warnings.push(repaired);
    }
    const stateBefore = JSON.stringify(state);
    // One deadline for this certificate, from its ARI check to the downloaded chain.
    const client = (await opts.pool.get(cfg.server, cfg.caBundle)).withDeadline(opts.timeoutMs);
    let decision: Decision;
    let cert: CertInfo | undefined;
    if (!certPem) {
      decision = { due: true, reason: "no certificate stored yet", source: "forced", renewAt: null, state };
    } else {
      cert = parseCertificate(certPem, `${store.dir(name)}/cert.pem`);
      decision = await decide({
        name,
        cert,
        cfg,
        state,
        now,
        nextRun: opts.nextRun,
        ari: (certId) => fetchRenewalWindow(client, certId),
        logger,
        force: opts.force,
      });
    }
    state = decision.state;
    // Most runs change nothing: no write (and no fsync) then.
    const changed = JSON.stringify(state) !== stateBefore;
    if (changed) {
      await writeState(home, name, state).catch(async (e) => {
        throw (
          (await notWritable(
            e,
            "wile keeps the renewal state (state.json) there; nothing was ordered from the CA",
          )) ?? e
        );
      });
    }
    if (!decision.due && state.deployPending) {
      // Renewed earlier but not deployed: deploy again, it is what the services are waiting for.
      // Not a renewal: the renewal backoff stays as it is.
      const pending = state.deployPending;
      logger.info(
        `${name}: deploying again (failed since ${pending.since}: ${pending.error.split("\n")[0]})`,
      );
      return (await redeploy(cfg, { home, logger, now, verifyWaitMs: opts.verifyWaitMs })).outcome;
    }
    if (!decision.due) {
      const outcome: Outcome = {
        name,
        status: decision.source === "backoff" ? "waiting" : "not-due",
        reason: decision.reason,
        ...(decision.renewAt ? { renewAt: decision.renewAt.toISOString() } : {}),
        ...(decision.explanationURL ? { explanationURL: decision.explanationURL } : {}),
      };
      // What was read stays true until the next moment, unless the files change: remembered.
      if (started && cert && !changed && !loaded.stateDamage) {
        opts.index?.done(started, { cfg, cert, state, decision, outcome });
      }
      return outcome;
    }

    logger.info(`${name}: renewing (${decision.reason})`);
    const ariAvailable = Boolean((await client.directory()).renewalInfo);
    const { outcome } = await obtainAndDeploy(
      { ...cfg, updatedAt: now.toISOString() },
      {
        home,
        logger,
        now,
        verifyWaitMs: opts.verifyWaitMs,
        reason: decision.reason,
        client,
        ...(ariAvailable && decision.replaces ? { replaces: decision.replaces } : {}),
        onInstalled: (r) =>
          logger.info(`${name}: renewed, serial ${r.serial}, valid until ${r.notAfter.toISOString()}`),
      },
    );
    return outcome.status === "renewed" && decision.explanationURL
      ? { ...outcome, explanationURL: decision.explanationURL }
      : outcome;
  } catch (err) {
    // loadCertificate failed before it read state.json (a damaged renewal.json, say): read it here.
    state ??= await readState(home, name);
    return recordFailure(home, name, state, err, now, logger);
  }
}

/** Runs `work` over `items` with at most `limit` at a time; results in the order of `items`. */
export async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** "12 checked, 2 renewed, 1 failed: b.example.com: <reason>" (the first line of each reason). */
export function summaryLine(outcomes: Outcome[]): string {
  return summarize({
    checked: outcomes.length,
    renewed: outcomes.filter((o) => o.status === "renewed").map((o) => o.name),
    failed: outcomes
      .filter((o) => o.status === "failed")
      .map((o) => ({ name: o.name, error: o.reason.split("\n")[0] ?? "" })),
  });
}
