import type { KeyObject } from "node:crypto";
import type { AcmeClient } from "../acme/client";
import { obtainCertificate } from "../acme/obtain";
import { AcmeProblem } from "../acme/problem";
import type { ChallengeContext, Solver } from "../acme/solver";
import type { Identifier } from "../acme/types";
import { WebrootSolver } from "../challenges/http-01-webroot";
import { parseResolve } from "../challenges/resolve";
import { createCsr } from "../crypto/csr";
import { generateKey, keyTypeOf, privateKeyFromPem, privateKeyToPem } from "../crypto/keys";
import { splitPemChain } from "../crypto/pem";
import { certMatchesKey, parseCertificate } from "../crypto/x509";
import { CertStore } from "../store/certs";
import type { RenewalConfig } from "../store/renewal";
import { WileError } from "../util/errors";
import { onInterrupt } from "../util/interrupt";
import type { Logger } from "../util/log";
import { ensureAccount } from "./account";
import { createClient } from "./client";

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
  /** How long to wait for validation and issuance. */
  timeoutMs?: number;
  /** A client for cfg.server shared across certificates (cron); else one is made and closed here. */
  client?: AcmeClient;
  /** ARI CertID of the certificate this one replaces (RFC 9773 5); dropped if the CA says alreadyReplaced. */
  replaces?: string;
  /** Called with the new serial just before the version is switched in (to note a deploy is due). */
  beforeInstall?: (serial: string) => Promise<void>;
}

/**
 * Gets a certificate as `cfg` describes, writes `cfg` as renewal.json and stores the certificate.
 * The certificate key is generated while the account and order are set up. Whatever fails, the
 * certificate already stored stays in place: the new one is installed only once it is checked.
 * The caller holds the certificate's lock (withCertificateLock).
 */
export async function issueFromConfig(cfg: RenewalConfig, deps: IssueDeps): Promise<IssueResult> {
  const { logger } = deps;
  const certs = new CertStore(deps.home);
  await certs.ensureDirs(cfg.name);
  // Challenge files presented and not yet cleaned up, so that an interrupt can remove them.
  const live = new Map<string, { solver: Solver; ctx: ChallengeContext }>();
  const unregister = onInterrupt(async () => {
    await Promise.allSettled([...live.values()].map(({ solver, ctx }) => solver.cleanup(ctx)));
  });
  const keyPromise = certificateKey(cfg, certs, logger);
  keyPromise.catch(() => {});
  const client = deps.client ?? (await createClient(cfg.server, cfg.caBundle, logger));
  try {
    // Before the account is touched: a profile the CA does not offer is a configuration error.
    if (cfg.profile) await checkProfile(client, cfg.profile);
    const account = await ensureAccount(
      client,
      { home: deps.home, directoryUrl: cfg.server, account: cfg.account, email: cfg.email, eab: deps.eab },
      logger,
    );
    const solver = tracked(
      new WebrootSolver({
        webroots: new Map(Object.entries(cfg.challenge.webroots)),
        logger,
        preflight: cfg.preflight ? { resolve: cfg.resolve.map(parseResolve) } : false,
      }),
      live,
    );
    let key: KeyObject | undefined;
    logger.info(`Ordering a certificate for ${cfg.identifiers.map((i) => i.value).join(", ")}`);
    const order = (replaces: string | undefined) =>
      obtainCertificate({
        account,
        identifiers: cfg.identifiers,
        solverFor: () => solver,
        csr: async () => {
          key = await keyPromise;
          return createCsr({ key, identifiers: cfg.identifiers, mustStaple: cfg.mustStaple });
        },
        chainTopIssuer: (pem) => {
          const certsInChain = splitPemChain(pem);
          const top = certsInChain[certsInChain.length - 1];
          return top ? parseCertificate(top).issuerCN : null;
        },
        ...(cfg.preferredChain ? { preferredChain: cfg.preferredChain } : {}),
        ...(cfg.profile ? { profile: cfg.profile } : {}),
        ...(replaces ? { replaces } : {}),
        logger,
        deadline: Date.now() + (deps.timeoutMs ?? 5 * 60_000),
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
    if (!key) key = await keyPromise;
    const { leafPem, chainPem, info } = checkIssued(result.pem, key, cfg.identifiers);
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
    if (!deps.client) client.close();
  }
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

/** Refuses to store anything the CA sent that does not fit: wrong key, missing names, garbage. */
function checkIssued(pem: string, key: KeyObject, identifiers: Identifier[]) {
  const parts = splitPemChain(pem);
  const leafPem = parts[0];
  if (!leafPem) throw new WileError("the CA sent an empty certificate chain; nothing was stored");
  const info = parseCertificate(leafPem, "the certificate from the CA");
  if (!certMatchesKey(leafPem, key)) {
    throw new WileError("the CA sent a certificate for a different key; nothing was stored");
  }
  const missing = identifiers.filter((id) =>
    id.type === "ip" ? !info.ipAddresses.includes(id.value) : !info.dnsNames.includes(id.value),
  );
  if (missing.length > 0) {
    throw new WileError(
      `the CA's certificate does not cover ${missing.map((m) => m.value).join(", ")}; nothing was stored`,
    );
  }
  return { leafPem, chainPem: parts.slice(1).join(""), info };
}
