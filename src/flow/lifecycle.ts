/**
 * One step in a certificate's life, the same for `wile issue`, `wile renew`, `wile cron` and
 * `wile deploy`:
 * ```
 * obtainAndDeploy:  obtain (issueFromConfig: order, install the version atomically, renewal.json)
 *                   -> deploy (runDeploys) -> record in state.json -> Outcome
 * redeploy:         deploy the certificate in place -> record in state.json -> Outcome
 * ```
 * What is recorded (state.json, read here and written back only when it changes):
 * - a certificate obtained: the state starts afresh, so the failures, lastError, nextAttempt, the
 *   ARI cache of the replaced certificate and any pending deploy of it are gone;
 * - a deploy about to run (and a new certificate about to be switched in, when it has deploy
 *   targets): deployPending "not deployed yet" first, so a run killed before its deploy finished
 *   is deployed again by the next run;
 * - a deploy that failed: deployPending { serial, error, since } (since stays while the same serial
 *   keeps failing): `wile list` shows the certificate failing and every cron run deploys it again;
 * - a deploy that succeeded: deployPending is dropped;
 * - obtaining failed: one more failure, lastError, and nextAttempt after a backoff (a CA's
 *   Retry-After wins). Not for a name this home does not have yet (no renewal.json, no
 *   certificate: a first `wile issue` that failed): cron does not renew it and `wile list` does not
 *   show it, so there is nothing to back off or report; the error goes to the caller only.
 * Commands derive their summary, output and exit code from the Outcome (and the error in it).
 * Callers hold the certificate's lock (withCertificateLock in cert-lock.ts) around each step.
 */
import type { AcmeClient } from "../acme/client";
import { AcmeProblem } from "../acme/problem";
import { parseCertificate } from "../crypto/x509";
import { runDeploys } from "../deploy/run";
import { nextAttemptAfterFailure } from "../renew/backoff";
import { CertStore } from "../store/certs";
import type { RenewalConfig } from "../store/renewal";
import { emptyState, type RenewalState, readState, writeState } from "../store/state";
import { NotWritableError } from "../store/writable";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { type IssueResult, issueFromConfig } from "./issue";

export interface Outcome {
  name: string;
  /** renewed (or issued); deployed (the certificate in place); not-due; waiting (backing off after failures); failed. */
  status: "renewed" | "deployed" | "not-due" | "waiting" | "failed";
  /** Why it was (not) renewed, or what failed. */
  reason: string;
  hint?: string;
  /** When it becomes due, for not-due and waiting; the next attempt after a failure. */
  renewAt?: string;
  serial?: string;
  notAfter?: string;
  /** The CA's explanation of its renewal window (ARI explanationURL), when it gave one. */
  explanationURL?: string;
  /** Damage found and repaired on the way (a corrupt state.json rewritten), one line each. */
  warnings?: string[];
}

export interface StepResult {
  outcome: Outcome;
  /** The certificate obtained and installed (also when its deploy failed). */
  issued?: IssueResult;
  /** What failed (outcome.status "failed"), for a command that reports the error itself. */
  error?: unknown;
}

export interface StepOptions {
  home: string;
  logger: Logger;
  /** When this run started: lastAttempt, deployPending.since; the backoff counts from it. */
  now: Date;
  /** How long a deploy's verify waits for each service (CommandContext.verifyWaitMs). */
  verifyWaitMs: number;
}

export interface ObtainOptions extends StepOptions {
  /** Why a new certificate is wanted, for the outcome ("forced", the ARI window, ...). */
  reason: string;
  /** EAB credentials, for registering the account (wile issue only). */
  eab?: { kid: string; hmacKey: Uint8Array } | undefined;
  /** A client shared across certificates (cron). */
  client?: AcmeClient;
  /** ARI CertID of the certificate this one replaces. */
  replaces?: string;
  /** The deadline of obtaining, in ms (when no client is given; a given one carries its own). */
  timeoutMs?: number;
  /** Called once the new certificate is installed, before it is deployed. */
  onInstalled?: (issued: IssueResult) => void;
}

/** Obtains a certificate as `cfg` says, deploys it and records the outcome. Throws only if state.json cannot be written. */
export async function obtainAndDeploy(cfg: RenewalConfig, opts: ObtainOptions): Promise<StepResult> {
  const { home, logger, now } = opts;
  const name = cfg.name;
  let issued: IssueResult;
  try {
    issued = await issueFromConfig(cfg, {
      home,
      logger,
      eab: opts.eab,
      ...(opts.client ? { client: opts.client } : {}),
      ...(opts.replaces ? { replaces: opts.replaces } : {}),
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      // Noted before the switch: a run killed between install and deploy is deployed by the next.
      ...(cfg.deploy.length > 0
        ? {
            beforeInstall: async (serial: string) =>
              writeState(home, name, { ...(await readState(home, name)), ...notDeployed(serial, now) }),
          }
        : {}),
    });
  } catch (err) {
    const known = await new CertStore(home).has(name);
    const outcome = known
      ? await recordFailure(home, name, await readState(home, name), err, now, logger)
      : failed(name, err);
    return { outcome, error: err };
  }
  const state: RenewalState = {
    ...emptyState(),
    lastAttempt: now.toISOString(),
    lastSuccess: new Date().toISOString(),
    ...(cfg.deploy.length > 0 ? notDeployed(issued.serial, now) : {}),
  };
  await writeState(home, name, state);
  opts.onInstalled?.(issued);
  const certificate = { serial: issued.serial, notAfter: issued.notAfter.toISOString() };
  const error = await deployAndRecord(cfg, issued.serial, state, opts);
  if (error !== undefined) {
    const outcome = failed(name, error, `renewed (serial ${issued.serial}), but the deploy failed: `);
    return { outcome: { ...outcome, ...certificate }, issued, error };
  }
  return { outcome: { name, status: "renewed", reason: opts.reason, ...certificate }, issued };
}

/** Deploys the certificate in place again and records the outcome. Throws only if state.json cannot be written. */
export async function redeploy(cfg: RenewalConfig, opts: StepOptions): Promise<StepResult> {
  const { home } = opts;
  const name = cfg.name;
  const state = await readState(home, name);
  const pending = state.deployPending;
  const store = new CertStore(home);
  let serial: string | undefined;
  try {
    const certPem = await store.readCurrentCert(name);
    if (certPem) serial = parseCertificate(certPem, `${store.dir(name)}/cert.pem`).serialHex;
  } catch (err) {
    return { outcome: failed(name, err), error: err };
  }
  // Without a certificate runDeploys fails (or has nothing to do), and there is nothing to record.
  const error = await deployAndRecord(cfg, serial, state, opts);
  if (error !== undefined) {
    const again = pending && pending.serial === serial ? " again" : "";
    const what = serial === undefined ? "the deploy" : `the deploy of serial ${serial}`;
    return { outcome: failed(name, error, `${what} failed${again}: `), error };
  }
  return {
    outcome: {
      name,
      status: "deployed",
      reason: pending
        ? "deployed the certificate whose deploy had failed"
        : `deployed${serial === undefined ? "" : ` serial ${serial}`}`,
    },
  };
}

/**
 * Records a failure to obtain a certificate (or to get as far as trying): one more failure, the
 * error, and when to try again. Never throws; the outcome says when the next attempt is.
 */
export async function recordFailure(
  home: string,
  name: string,
  state: RenewalState,
  err: unknown,
  now: Date,
  logger: Logger,
): Promise<Outcome> {
  const failures = state.failures + 1;
  const next = nextAttemptAfterFailure(failures, now, err instanceof AcmeProblem ? err.retryAfterMs : null);
  await writeState(home, name, {
    ...state,
    failures,
    lastAttempt: now.toISOString(),
    lastError: errorMessage(err),
    nextAttempt: next.toISOString(),
  }).catch((e) => {
    // Said already when the failure is that very directory being unwritable.
    if (!(err instanceof NotWritableError)) {
      logger.warn(`${name}: could not record the failure: ${(e as Error).message}`);
    }
  });
  return { ...failed(name, err), renewAt: next.toISOString() };
}

/**
 * Runs the deploys of `cfg` and records the result in `state` (written when it changes): a
 * failure leaves the certificate with `serial` pending. Returns the error of a failed deploy.
 */
async function deployAndRecord(
  cfg: RenewalConfig,
  serial: string | undefined,
  state: RenewalState,
  opts: StepOptions,
): Promise<unknown> {
  const { home, logger, now } = opts;
  const { deployPending: pending, ...rest } = state;
  if (serial !== undefined && cfg.deploy.length > 0 && pending?.serial !== serial) {
    // Noted first, so that a run killed half way through the deploy is deployed again by the next.
    await writeState(home, cfg.name, { ...rest, ...notDeployed(serial, now) });
  }
  try {
    await runDeploys(home, cfg.name, cfg, logger, { verifyWaitMs: opts.verifyWaitMs });
  } catch (err) {
    if (serial !== undefined) {
      const since = pending?.serial === serial ? pending.since : now.toISOString();
      await writeState(home, cfg.name, {
        ...rest,
        deployPending: { serial, error: errorMessage(err), since },
      });
    }
    return err ?? new Error("the deploy failed");
  }
  if (pending || (serial !== undefined && cfg.deploy.length > 0)) await writeState(home, cfg.name, rest);
  return undefined;
}

/** The deployPending of a certificate whose deploy has not finished yet. */
function notDeployed(serial: string, now: Date): Pick<RenewalState, "deployPending"> {
  return {
    deployPending: {
      serial,
      error: "not deployed yet (a run was stopped before its deploy finished)",
      since: now.toISOString(),
    },
  };
}

function failed(name: string, err: unknown, prefix = ""): Outcome {
  const hint = err instanceof WileError ? err.hint : undefined;
  return { name, status: "failed", reason: `${prefix}${errorMessage(err)}`, ...(hint ? { hint } : {}) };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
