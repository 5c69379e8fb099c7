import { AcmeProblem } from "../acme/problem";
import { parseCertificate } from "../crypto/x509";
import { runDeploys } from "../deploy/run";
import type { ClientPool } from "../flow/client";
import { issueFromConfig } from "../flow/issue";
import { CertStore } from "../store/certs";
import { emptyState, type RenewalState, readState, writeState } from "../store/state";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { summarize } from "../util/notify";
import { fetchRenewalWindow } from "./ari";
import { nextAttemptAfterFailure } from "./backoff";
import { type Decision, decide } from "./decide";

export interface Outcome {
  name: string;
  /** renewed; not-due; waiting (backing off after failures); failed. */
  status: "renewed" | "deployed" | "not-due" | "waiting" | "failed";
  /** Why it was (not) renewed, or what failed. */
  reason: string;
  hint?: string;
  /** When it becomes due, for not-due and waiting. */
  renewAt?: string;
  serial?: string;
  notAfter?: string;
  /** The CA's explanation of its renewal window (ARI explanationURL), when it gave one. */
  explanationURL?: string;
}

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
}

/**
 * Checks one certificate and renews it when due, replaying its renewal.json. Never throws: a
 * failure is an outcome, recorded in state.json with the time of the next attempt (backing off),
 * and the certificate and key in place stay untouched.
 */
export async function renewOne(name: string, opts: RenewOptions): Promise<Outcome> {
  const { home, logger, now } = opts;
  const store = new CertStore(home);
  let state: RenewalState = emptyState();
  try {
    state = await readState(home, name);
    const cfg = await store.readRenewal(name);
    if (!cfg) {
      throw new WileError(`${name} has no renewal.json, so wile does not know how to renew it`, {
        hint: `Issue it again with wile issue (which writes ${store.dir(name)}/renewal.json), or wile remove ${name}.`,
      });
    }
    const certPem = await store.readCurrentCert(name);
    const stateBefore = JSON.stringify(state);
    let decision: Decision;
    if (!certPem) {
      decision = { due: true, reason: "no certificate stored yet", source: "forced", renewAt: null, state };
    } else {
      const cert = parseCertificate(certPem, `${store.dir(name)}/cert.pem`);
      const client = await opts.pool.get(cfg.server, cfg.caBundle);
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
    if (!decision.due && state.deployPending) {
      // Renewed earlier but not deployed: deploy again, it is what the services are waiting for.
      const pending = state.deployPending;
      logger.info(
        `${name}: deploying again (failed since ${pending.since}: ${pending.error.split("\n")[0]})`,
      );
      try {
        await runDeploys(home, name, cfg, logger, opts.verifyWaitMs);
      } catch (err) {
        // Not a renewal failure: the renewal backoff stays as it is; the next run tries again.
        if (JSON.stringify(state) !== stateBefore) await writeState(home, name, state);
        return {
          name,
          status: "failed",
          reason: `the deploy of serial ${pending.serial} failed again: ${err instanceof Error ? err.message : String(err)}`,
          ...(err instanceof WileError && err.hint ? { hint: err.hint } : {}),
        };
      }
      delete state.deployPending;
      await writeState(home, name, state);
      return { name, status: "deployed", reason: "deployed the certificate whose deploy had failed" };
    }
    if (!decision.due) {
      // Most runs change nothing: no write (and no fsync) then.
      if (JSON.stringify(state) !== stateBefore) await writeState(home, name, state);
      return {
        name,
        status: decision.source === "backoff" ? "waiting" : "not-due",
        reason: decision.reason,
        ...(decision.renewAt ? { renewAt: decision.renewAt.toISOString() } : {}),
        ...(decision.explanationURL ? { explanationURL: decision.explanationURL } : {}),
      };
    }

    logger.info(`${name}: renewing (${decision.reason})`);
    state = { ...state, lastAttempt: now.toISOString() };
    const client = await opts.pool.get(cfg.server, cfg.caBundle);
    const ariAvailable = Boolean((await client.directory()).renewalInfo);
    const result = await issueFromConfig(
      { ...cfg, updatedAt: now.toISOString() },
      { home, logger, client, ...(ariAvailable && decision.replaces ? { replaces: decision.replaces } : {}) },
    );
    // A new certificate: its ARI window and the failure count start afresh.
    state = { ...emptyState(), lastAttempt: now.toISOString(), lastSuccess: new Date().toISOString() };
    await writeState(home, name, state);
    logger.info(`${name}: renewed, serial ${result.serial}, valid until ${result.notAfter.toISOString()}`);
    try {
      await runDeploys(home, name, cfg, logger, opts.verifyWaitMs);
    } catch (err) {
      // Renewed and stored, but the services do not have it yet: a failure, retried by the next run.
      const message = err instanceof Error ? err.message : String(err);
      state.deployPending = { serial: result.serial, error: message, since: now.toISOString() };
      await writeState(home, name, state);
      return {
        name,
        status: "failed",
        reason: `renewed (serial ${result.serial}), but the deploy failed: ${message}`,
        ...(err instanceof WileError && err.hint ? { hint: err.hint } : {}),
        serial: result.serial,
        notAfter: result.notAfter.toISOString(),
      };
    }
    return {
      name,
      status: "renewed",
      reason: decision.reason,
      serial: result.serial,
      notAfter: result.notAfter.toISOString(),
      ...(decision.explanationURL ? { explanationURL: decision.explanationURL } : {}),
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const failures = state.failures + 1;
    const retryAfter = err instanceof AcmeProblem ? err.retryAfterMs : null;
    const next = nextAttemptAfterFailure(failures, now, retryAfter);
    await writeState(home, name, {
      ...state,
      failures,
      lastAttempt: now.toISOString(),
      lastError: message,
      nextAttempt: next.toISOString(),
    }).catch((e) => logger.warn(`${name}: could not record the failure: ${(e as Error).message}`));
    const hint = err instanceof WileError ? err.hint : undefined;
    return {
      name,
      status: "failed",
      reason: message,
      ...(hint ? { hint } : {}),
      renewAt: next.toISOString(),
    };
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
