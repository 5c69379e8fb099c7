import type { KeyObject } from "node:crypto";
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import type { AccountSession } from "../acme/account-session";
import type { AcmeClient } from "../acme/client";
import { obtainCertificate } from "../acme/obtain";
import { AcmeProblem } from "../acme/problem";
import type { ChallengeContext, Solver } from "../acme/solver";
import type { Identifier } from "../acme/types";
import type { PropagationCheck } from "../challenges/dns-01";
import { DnsPersistSolver, persistDirectoryInfo, type WaitForTxt } from "../challenges/dns-persist-01";
import { StandaloneSolver } from "../challenges/http-01-standalone";
import { StatelessSolver } from "../challenges/http-01-stateless";
import { WebrootSolver } from "../challenges/http-01-webroot";
import { parseResolve } from "../challenges/resolve";
import { TlsAlpnSolver } from "../challenges/tls-alpn-01";
import { createCsr } from "../crypto/csr";
import { generateKey, keyTypeOf, privateKeyFromPem, privateKeyToPem } from "../crypto/keys";
import { splitPemChain } from "../crypto/pem";
import { ChainRejected, type CheckedChain, checkChain, parseCertificate } from "../crypto/x509";
import { DEFAULT_DNS_TIMEOUT_S, propagationCheck, recordLocator, waitForTxt } from "../dns/propagation";
import { parseServer } from "../dns/transport";
import { CertStore } from "../store/certs";
import { readConfig } from "../store/config";
import { journalPath, removeLeftovers, WebrootJournal } from "../store/leftovers";
import type { RenewalConfig } from "../store/renewal";
import { checkWritable, notWritable } from "../store/writable";
import { WileError } from "../util/errors";
import { onInterrupt } from "../util/interrupt";
import type { Logger } from "../util/log";
import { printable } from "../util/text";
import { ensureAccount } from "./account";
import { createClient } from "./client";
import { DnsJournal, dnsJournalPath, journaled, removeDnsLeftovers } from "./dns-leftovers";
import { solversFor } from "./solvers";

export interface IssueResult {
  name: string;
  identifiers: Identifier[];
  serial: string;
  notBefore: Date;
  notAfter: Date;
  issuer: string | null;
  path: string;
}

export interface IssueDeps {
  home: string;
  logger: Logger;
  /** EAB credentials: only needed when the account is registered, so never stored in renewal.json. */
  eab?: { kid: string; hmacKey: Uint8Array } | undefined;
  /** The deadline of the whole operation (default DEFAULT_TIMEOUT_MS), when no client is given. */
  timeoutMs?: number;
  /**
   * A client for cfg.server shared across certificates (cron), already limited to this
   * certificate's deadline (AcmeClient.withDeadline); else one is made and closed here.
   */
  client?: AcmeClient;
  /** ARI CertID of the certificate this one replaces (RFC 9773 5); dropped if the CA says alreadyReplaced. */
  replaces?: string;
  /** Called with the new serial just before the version is switched in (to note a deploy is due). */
  beforeInstall?: (serial: string) => Promise<void>;
  /** dns-01: waits until the records are visible before the CA is asked (default: as renewal.json's challenge.dnsCheck says). */
  dnsCheck?: PropagationCheck;
  /** The home config's dns section (provider credentials); read from config.json when absent. */
  dnsConfig?: Record<string, Record<string, unknown>>;
  /** dns-persist-01: waits until the persistent record is right (default: waitForTxt, src/dns/propagation.ts). */
  waitForTxt?: WaitForTxt;
}

/**
 * Gets a certificate as `cfg` describes, writes `cfg` as renewal.json and stores the certificate.
 * The certificate key is generated while the account and order are set up. Whatever fails, the
 * certificate already stored stays in place: the new one is installed only once it is checked.
 * The caller holds the certificate's lock (withCertificateLock).
 */
/** How long one certificate operation may take, whatever the CA does: --timeout's default. */
export const DEFAULT_TIMEOUT_MS = 300_000;

export async function issueFromConfig(cfg: RenewalConfig, deps: IssueDeps): Promise<IssueResult> {
  const { logger } = deps;
  const certs = new CertStore(deps.home);
  // Everything the lifecycle writes (the version, the stable links, renewal.json, state.json) goes
  // to the certificate's directory and its archive: found unwritable now, before the CA is asked,
  // not after it issued (issue 10 finding 3).
  const why = "the new certificate could not be stored, so nothing was ordered from the CA";
  try {
    const dir = await certs.ensureDirs(cfg.name);
    await checkWritable([dir, join(dir, "archive")], why);
  } catch (err) {
    throw (await notWritable(err, why)) ?? err;
  }
  // What a run killed with -9 left in webroots for this certificate: ours to remove, the caller
  // holds the lock.
  const journalFile = journalPath(deps.home, cfg.name);
  await removeLeftovers(journalFile, logger);
  // And in DNS zones: through the same providers, credentials from the environment and config.
  const dnsFile = dnsJournalPath(deps.home, cfg.name);
  const usesDns = Object.keys(cfg.challenge.dns ?? {}).length > 0 || (await exists(dnsFile));
  const dnsConfig = deps.dnsConfig ?? (usesDns ? (await readConfig(deps.home)).dns : undefined);
  await removeDnsLeftovers(dnsFile, { logger, env: process.env, dnsConfig, home: deps.home });
  const dnsJournal = new DnsJournal(dnsFile);
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // The run's deadline (--timeout): a shared client (cron) carries this certificate's own.
  const deadline = Math.min(Date.now() + timeoutMs, deps.client?.deadlineAt ?? Number.POSITIVE_INFINITY);
  const dnsCheck = cfg.challenge.dnsCheck ?? { timeout: DEFAULT_DNS_TIMEOUT_S };
  const aliases = cfg.challenge.dnsAlias ?? {};
  // Each solver that fetches its own challenge first (the preflight) does it this way.
  const preflight = cfg.preflight ? { resolve: cfg.resolve.map(parseResolve) } : (false as const);
  // --standalone: wile's own http-01 listener, bound before the CA is contacted (below).
  const sa = cfg.challenge.standalone;
  const standalone =
    sa &&
    new StandaloneSolver({
      port: sa.port,
      ...(sa.address ? { address: sa.address } : {}),
      logger,
      preflight,
    });
  // Challenge files presented and not yet cleaned up, so that an interrupt can remove them.
  const live = new Map<string, { solver: Solver; ctx: ChallengeContext }>();
  // tls-alpn-01: wile's own listener, which takes its port below, before the CA is contacted.
  const alpnCfg = cfg.challenge.alpn;
  const alpn = alpnCfg
    ? new TlsAlpnSolver({
        port: alpnCfg.port,
        ...(alpnCfg.address ? { address: alpnCfg.address } : {}),
        logger,
        preflight,
      })
    : undefined;
  // The solvers, and the DNS providers' settings checked, before anything is contacted.
  const solverFor = solversFor(cfg, join(certs.dir(cfg.name), "renewal.json"), {
    logger,
    env: process.env,
    dnsConfig,
    wrapProvider: (provider, entry) => journaled(provider, entry, dnsJournal),
    home: deps.home,
    ...(standalone ? { standalone } : {}),
    check: deps.dnsCheck ?? propagationCheck(dnsCheck, { logger, deadline }),
    locate: recordLocator({
      ...(dnsCheck.resolvers ? { resolvers: dnsCheck.resolvers } : {}),
      alias: (name) =>
        [name, `*.${name}`].map((n) => (Object.hasOwn(aliases, n) ? aliases[n] : undefined)).find(Boolean),
      lenient: dnsCheck.skip === true,
      logger,
    }),
    webroot: () =>
      new WebrootSolver({
        webroots: new Map(Object.entries(cfg.challenge.webroots)),
        logger,
        preflight,
        journal: new WebrootJournal(journalFile),
      }),
    stateless: () =>
      new StatelessSolver({
        logger,
        preflight,
      }),
    persist: () =>
      new DnsPersistSolver({
        account: () => {
          if (!session) throw new Error("dns-persist-01: the account is not set up yet");
          return { url: session.url, thumbprint: session.key.thumbprint };
        },
        directory: () => persistDirectoryInfo(directoryMeta),
        waitForTxt: dnsCheck.skip
          ? async (fqdn) => logger.info(`Not checking ${fqdn} (--no-dns-check); asking the CA now`)
          : (deps.waitForTxt ?? waitForTxt),
        ...(dnsCheck.resolvers ? { servers: dnsCheck.resolvers.map((r) => parseServer(r)) } : {}),
        // Without a --dns-timeout of its own, a missing record is reported sooner than dns-01 waits.
        ...(cfg.challenge.dnsCheck ? { timeoutMs: dnsCheck.timeout * 1000 } : {}),
        deadline,
        names: cfg.challenge.persist ?? [],
        logger,
      }),
    ...(alpn ? { alpn } : {}),
  });
  // Set once the account is: the dns-persist-01 solver is only asked for during the order.
  let session: AccountSession | undefined;
  let directoryMeta: unknown;
  const trackedSolvers = new Map<Solver, Solver>();
  const solverOf = (identifier: Identifier, wildcard: boolean): Solver => {
    const solver = solverFor(identifier, wildcard);
    // dns-persist-01 puts nothing in place, so an interrupt has nothing of it to clean up.
    if (solver.type === "dns-persist-01") return solver;
    const known = trackedSolvers.get(solver);
    if (known) return known;
    const t = tracked(solver, live);
    trackedSolvers.set(solver, t);
    return t;
  };
  // Reads the --ca-bundle file only: nothing is contacted yet.
  const client =
    deps.client ?? (await createClient(cfg.server, cfg.caBundle, logger)).withDeadline(timeoutMs);
  const unregister = onInterrupt(async () => {
    await Promise.allSettled([...live.values()].map(({ solver, ctx }) => solver.cleanup(ctx)));
    await standalone?.close();
    await alpn?.close();
  });
  const keyPromise = certificateKey(cfg, certs, logger);
  keyPromise.catch(() => {});
  try {
    // wile's own listeners take their ports now, before anything is contacted: a port that is
    // taken or not permitted stops the run here (exit 2, nothing ordered). They stay up until the
    // order is over (closed in finally, or by the interrupt handler).
    await standalone?.open();
    await alpn?.listen();
    // Before the account is touched: a profile the CA does not offer is a configuration error.
    if (cfg.profile) await checkProfile(client, cfg.profile);
    const account = await ensureAccount(
      client,
      { home: deps.home, directoryUrl: cfg.server, account: cfg.account, email: cfg.email, eab: deps.eab },
      logger,
    );
    session = account;
    directoryMeta = (await client.directory()).meta;
    let key: KeyObject | undefined;
    logger.info(`Ordering a certificate for ${cfg.identifiers.map((i) => i.value).join(", ")}`);
    const order = (replaces: string | undefined) =>
      obtainCertificate({
        account,
        identifiers: cfg.identifiers,
        solverFor: solverOf,
        csr: async () => {
          key = await keyPromise;
          return createCsr({ key, identifiers: cfg.identifiers, mustStaple: cfg.mustStaple });
        },
        // A chain that does not parse is no match; the chain picked is checked below in any case.
        chainTopIssuer: (pem) => {
          try {
            const certsInChain = splitPemChain(pem);
            const top = certsInChain[certsInChain.length - 1];
            return top ? parseCertificate(top).issuerCN : null;
          } catch {
            return null;
          }
        },
        ...(cfg.preferredChain ? { preferredChain: cfg.preferredChain } : {}),
        ...(cfg.profile ? { profile: cfg.profile } : {}),
        ...(replaces ? { replaces } : {}),
        logger,
        deadline,
      });
    let result: Awaited<ReturnType<typeof order>>;
    try {
      result = await order(deps.replaces);
    } catch (err) {
      // RFC 9773 5: the old certificate was renewed already (perhaps by another client): renew anyway.
      if (!(deps.replaces && err instanceof AcmeProblem && err.is("alreadyReplaced"))) throw err;
      logger.warn(`the CA says ${cfg.name}'s certificate was already replaced; ordering without "replaces"`);
      result = await order(undefined);
    }
    // The validations are over: the tls-alpn-01 port is free again before the files are written.
    await alpn?.close();
    if (!key) key = await keyPromise;
    const {
      leafPem,
      chainPem,
      leaf: info,
    } = checkIssued(result, key, cfg, await currentChain(certs, cfg.name), logger);
    // renewal.json first: a run killed between the two leaves a certificate that cron renews (or
    // obtains, if none was installed yet), never one that cron does not know how to renew.
    await certs.writeRenewal(cfg.name, cfg);
    await deps.beforeInstall?.(info.serialHex);
    const { versionDir } = await certs.install(cfg.name, {
      privkeyPem: privateKeyToPem(key),
      certPem: leafPem,
      chainPem,
      fullchainPem: leafPem + chainPem,
    });
    logger.debug(`stored in ${versionDir}`);
    return {
      name: cfg.name,
      identifiers: cfg.identifiers,
      serial: info.serialHex,
      notBefore: info.notBefore,
      notAfter: info.notAfter,
      issuer: info.issuerCN,
      path: certs.dir(cfg.name),
    };
  } finally {
    unregister();
    await standalone?.close();
    await alpn?.close();
    if (!deps.client) client.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return (await lstat(file).catch(() => null)) !== null;
}

/** The current version's chain.pem (issuers checkChain may find the new chain's top among), if readable. */
async function currentChain(certs: CertStore, name: string): Promise<string | undefined> {
  return (await certs.readCurrent(name).catch(() => null))?.chainPem || undefined;
}

/**
 * The key for the new certificate: a fresh one, or with reuseKey the current one when it is of the
 * configured type (a changed --key-type gets a new key).
 */
async function certificateKey(cfg: RenewalConfig, certs: CertStore, logger: Logger): Promise<KeyObject> {
  if (cfg.reuseKey) {
    const current = await certs.readCurrent(cfg.name);
    if (current) {
      const key = privateKeyFromPem(current.privkeyPem, `${certs.dir(cfg.name)}/privkey.pem`);
      if (keyTypeOf(key) === cfg.keyType) return key;
      logger.info(`The current key is not ${cfg.keyType}; making a new one despite --reuse-key`);
    }
  }
  return generateKey(cfg.keyType);
}

/** A profile the CA does not list is refused before ordering (draft-ietf-acme-profiles). */
export async function checkProfile(client: Pick<AcmeClient, "directory">, profile: string): Promise<void> {
  const profiles = (await client.directory()).meta?.profiles;
  if (profiles && Object.hasOwn(profiles, profile)) return;
  const list = profiles ? Object.entries(profiles).map(([name, about]) => `  ${name}: ${about}`) : [];
  throw new WileError(
    list.length > 0
      ? `the CA has no profile "${profile}"; it offers:\n${list.join("\n")}`
      : `the CA offers no profiles, so --profile ${profile} cannot be used`,
    {
      hint:
        list.length > 0
          ? "Pick one of those with --profile, or leave --profile out for the CA's default."
          : "Leave --profile out.",
    },
  );
}

/** The same solver, keeping `live` up to date with what it has put in place. */
function tracked(solver: Solver, live: Map<string, { solver: Solver; ctx: ChallengeContext }>): Solver {
  return {
    type: solver.type,
    present: async (ctx) => {
      live.set(ctx.token, { solver, ctx });
      await solver.present(ctx);
    },
    ...(solver.preflight
      ? { preflight: (ctx: ChallengeContext) => solver.preflight?.(ctx) ?? Promise.resolve() }
      : {}),
    cleanup: async (ctx) => {
      await solver.cleanup(ctx);
      live.delete(ctx.token);
    },
  };
}

/**
 * Refuses to store a chain the CA sent that does not fit the request or does not hold together
 * (checkChain: garbage, expired or not yet valid, another key, missing names, links that do not
 * verify), naming the CA; the current certificate stays. Logs how the chain verified.
 */
function checkIssued(
  result: { pem: string; orderUrl: string },
  key: KeyObject,
  cfg: RenewalConfig,
  knownIssuers: string | undefined,
  logger: Logger,
): CheckedChain {
  let checked: CheckedChain;
  try {
    checked = checkChain(result.pem, {
      key,
      identifiers: cfg.identifiers,
      now: new Date(),
      ...(knownIssuers ? { knownIssuers } : {}),
    });
  } catch (err) {
    if (!(err instanceof ChainRejected)) throw err;
    throw new WileError(
      `the CA at ${cfg.server} sent ${err.message}; it was not installed${knownIssuers ? ", and the current certificate stays in place" : ""}`,
      {
        hint: `This is a fault of the CA, not of this machine's setup. Run the command again later for a new certificate; if it happens again, report it to the CA with the order URL ${printable(result.orderUrl, 200)}.`,
      },
    );
  }
  for (const w of checked.warnings) logger.warn(w);
  logger.info(`Checked the certificate: ${checked.verified}`);
  return checked;
}
