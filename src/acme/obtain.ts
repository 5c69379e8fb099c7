import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { isRecord, printable } from "../util/text";
import type { AccountSession } from "./account-session";
import { keyAuthorization } from "./jws";
import { AcmeProblem } from "./problem";
import type { ChallengeContext, Solver } from "./solver";
import type { Authorization, Challenge, Identifier, Order } from "./types";

export interface ObtainOptions {
  /** The account that orders; its key's thumbprint goes into every key authorization. */
  account: AccountSession;
  identifiers: Identifier[];
  /**
   * The solver for an identifier; `wildcard` for the authorization of `*.<identifier.value>` (RFC
   * 8555 7.1.4: its identifier has no "*."), which may be proved another way than the name itself.
   */
  solverFor: (identifier: Identifier, wildcard: boolean) => Solver;
  /** Called once the order is ready, to get the CSR (DER); the certificate key is made lazily. */
  csr: () => Promise<Uint8Array> | Uint8Array;
  /** Issuer CN of the chain's top certificate to prefer among alternates. */
  preferredChain?: string;
  /** Called with a PEM chain to read the top certificate's issuer CN (crypto lives outside acme/). */
  chainTopIssuer?: (pem: string) => string | null;
  logger: Logger;
  /** Epoch ms after which waiting for validation or issuance stops. */
  deadline: number;
  replaces?: string;
  profile?: string;
}

export interface ObtainResult {
  /** The chain as served: leaf first. */
  pem: string;
  orderUrl: string;
  certificateUrl: string;
}

/** One failed authorization, with what the operator needs to fix it. */
export interface ValidationFailure {
  identifier: Identifier;
  challengeType: string;
  /** The URL the CA fetched (http-01), when known. */
  url: string | undefined;
  /** The CA's problem type and detail. */
  type: string;
  detail: string;
}

/** The CA tried to validate and failed, for one or more names. Lists each. */
export class ValidationError extends WileError {
  readonly failures: ValidationFailure[];
  constructor(failures: ValidationFailure[]) {
    const lines = failures.map(
      (f) =>
        `  ${f.identifier.value} (${f.challengeType}${f.url ? `, CA fetched ${f.url}` : ""}): ${f.detail || f.type}`,
    );
    super(
      `the CA could not validate ${failures.map((f) => f.identifier.value).join(", ")}:\n${lines.join("\n")}`,
      {
        hint: `${failures.some((f) => f.challengeType === "dns-persist-01") ? "For dns-persist-01: the CA did not accept _validation-persist.NAME; check it with wile dns-persist -d NAME (the record must name this CA and this account, with policy=wildcard for *.NAME). " : ""}${failures.some((f) => f.challengeType === "dns-01") ? "For dns-01: make sure the TXT record _acme-challenge.NAME is served by every authoritative server of the zone (and that no stale CNAME points elsewhere). " : ""}${failures.some((f) => f.challengeType === "tls-alpn-01") ? "For tls-alpn-01: the CA connects to port 443 of each name's address; make sure it reaches wile's --tls-port (forwarded, or routed by ALPN acme-tls/1 in nginx or HAProxy). " : ""}${failures.some((f) => f.challengeType !== "dns-01" && f.challengeType !== "dns-persist-01" && f.challengeType !== "tls-alpn-01") ? "For http-01: make sure each name's web server serves the webroot given with -w at /.well-known/acme-challenge/ over plain HTTP on port 80. " : ""}Failed validations count against the CA's rate limit (5 per name per hour at Let's Encrypt).`,
      },
    );
    this.failures = failures;
  }
}

/** RFC 8555 8.3: a token is base64url; 255 characters is the longest file name. */
const TOKEN = /^[A-Za-z0-9_-]{1,255}$/;

/**
 * The CA must answer for exactly the names asked for (RFC 8555 7.4): a name it added is not the
 * operator's to prove, a name it left out would be missing from the certificate.
 */
function checkIdentifiers(asked: Identifier[], got: Identifier[], url: string, all = true): void {
  const keyOf = (i: Identifier) => `${i.type}:${i.value.toLowerCase()}`;
  const want = new Set(asked.map(keyOf));
  const have = new Set(got.map(keyOf));
  const extra = got.filter((i) => !want.has(keyOf(i)));
  const missing = all ? asked.filter((i) => !have.has(keyOf(i))) : [];
  if (extra.length === 0 && missing.length === 0) return;
  const list = (ids: Identifier[]) => ids.map((i) => printable(i.value, 80)).join(", ");
  throw new WileError(
    extra.length > 0
      ? `the CA at ${hostOf(url)} answered for ${list(extra)}, which was not asked for (order ${url})`
      : `the CA at ${hostOf(url)} left out ${list(missing)}, which was asked for (order ${url})`,
    {
      hint: "Nothing was written for that order. The CA is not following RFC 8555: report it to the CA, or try another CA.",
    },
  );
}

function hostOf(url: string): string {
  return new URL(url).host;
}

interface Pending {
  authzUrl: string;
  authz: Authorization;
  challenge: Challenge;
  solver: Solver;
  ctx: ChallengeContext;
  presented: boolean;
}

/**
 * RFC 8555 7.4 from newOrder to the downloaded chain: prove control of each identifier with its
 * solver (present and self-check every one before the CA is asked to validate any), finalize with
 * the CSR, wait, download, pick the preferred chain. Solvers are cleaned up whatever happens.
 */
export async function obtainCertificate(opts: ObtainOptions): Promise<ObtainResult> {
  const { account, logger } = opts;
  const { url: orderUrl, order: created } = await account.newOrder(opts.identifiers, {
    ...(opts.replaces ? { replaces: opts.replaces } : {}),
    ...(opts.profile ? { profile: opts.profile } : {}),
  });
  logger.debug(`order ${orderUrl} is ${created.status}`);
  checkIdentifiers(opts.identifiers, created.identifiers, orderUrl);
  let order = created;

  if (order.status === "pending") {
    order = await authorize(opts, order, orderUrl);
  }
  if (order.status === "invalid") throw await orderInvalid(opts, order, orderUrl);
  if (order.status === "ready") {
    logger.info("Finalizing the order");
    order = await finalize(opts, order, orderUrl, await opts.csr());
  }
  if (order.status === "processing" || order.status === "ready") {
    order = await account.poll(
      () => account.getOrder(orderUrl),
      (o) => o.status !== "processing" && o.status !== "ready",
      opts.deadline,
      "the CA to issue the certificate",
    );
  }
  if (order.status !== "valid" || !order.certificate) throw await orderInvalid(opts, order, orderUrl);

  logger.info("Downloading the certificate");
  const first = await account.downloadCertificate(order.certificate);
  let pem = first.pem;
  if (opts.preferredChain && opts.chainTopIssuer) {
    pem = await pickChain(opts, first, opts.preferredChain, opts.chainTopIssuer);
  }
  return { pem, orderUrl, certificateUrl: order.certificate };
}

async function authorize(opts: ObtainOptions, order: Order, orderUrl: string): Promise<Order> {
  const { account, logger } = opts;
  const authzs = await Promise.all(
    order.authorizations.map(async (url) => ({ url, authz: (await account.getAuthorization(url)).json })),
  );
  const pending: Pending[] = [];
  for (const { url, authz } of authzs) {
    const name = authz.wildcard ? `*.${authz.identifier.value}` : authz.identifier.value;
    checkIdentifiers(opts.identifiers, [{ ...authz.identifier, value: name }], url, false);
    if (authz.status === "valid") {
      logger.info(`${name}: already authorized`);
      continue;
    }
    if (authz.status !== "pending") {
      throw new WileError(`the CA says the authorization for ${name} is ${authz.status}`, {
        hint: "Run the command again to get a fresh order.",
      });
    }
    const solver = opts.solverFor(authz.identifier, authz.wildcard === true);
    const challenge = authz.challenges.find((c) => c.type === solver.type);
    if (!challenge) {
      const offered = authz.challenges.map((c) => c.type).join(", ") || "none";
      throw new WileError(`the CA does not offer ${solver.type} for ${name} (it offers: ${offered})`, {
        hint: authz.wildcard
          ? "Wildcard names can only be validated with dns-01 or dns-persist-01."
          : undefined,
      });
    }
    // dns-persist-01 has no token: its proof names the account, not the challenge (draft-ietf-acme-dns-persist).
    const tokenless = solver.type === "dns-persist-01";
    if (!tokenless && (typeof challenge.token !== "string" || !TOKEN.test(challenge.token))) {
      const shown =
        typeof challenge.token === "string" ? `"${printable(challenge.token, 60)}"` : typeof challenge.token;
      throw new WileError(
        `the CA at ${hostOf(url)} sent an unsafe challenge token for ${name}: ${shown} (${typeof challenge.token === "string" ? `${challenge.token.length} characters` : "not a string"}); nothing was written`,
        {
          hint: "A token must be base64url (RFC 8555 8.3) and fit in a file name. The CA is misbehaving: report it to the CA.",
        },
      );
    }
    const token = tokenless ? "" : (challenge.token as string);
    const ctx: ChallengeContext = {
      identifier: authz.identifier,
      token,
      keyAuthorization: tokenless ? "" : keyAuthorization(token, opts.account.key),
      wildcard: authz.wildcard === true,
      challenge,
    };
    pending.push({ authzUrl: url, authz, challenge, solver, ctx, presented: false });
  }

  try {
    for (const p of pending) {
      await p.solver.present(p.ctx);
      p.presented = true;
    }
    for (const p of pending) {
      if (p.solver.preflight) await p.solver.preflight(p.ctx);
    }
    for (const p of pending) {
      if (p.challenge.status === "pending") {
        logger.info(`Validating ${p.authz.identifier.value} (${p.challenge.type})`);
        await respond(opts, p);
      }
    }
    if (pending.length === 0) return order;
    // One loop on the order instead of one per authorization: it leaves "pending" once every
    // authorization is valid, or one is invalid.
    return await account.poll(
      () => account.getOrder(orderUrl),
      (o) => o.status !== "pending",
      opts.deadline,
      "the CA to validate",
    );
  } finally {
    for (const p of pending) {
      if (!p.presented) continue;
      try {
        await p.solver.cleanup(p.ctx);
      } catch (err) {
        logger.warn(
          `could not clean up the challenge for ${p.authz.identifier.value}: ${(err as Error).message}`,
        );
      }
    }
  }
}

/*
 * A request whose answer was lost (a reset, a timeout) after the CA acted on it is sent again by
 * the client, and the CA then refuses it, since the resource has moved on: a challenge already
 * being validated, an order already finalized. The resource as it is now decides whether the
 * refusal matters; the polls that follow see what the CA made of the first request.
 */

/** RFC 8555 7.5.1: tells the CA the challenge is ready; a refusal for a challenge no longer pending is not a failure. */
async function respond(opts: ObtainOptions, p: Pending): Promise<void> {
  try {
    await opts.account.respondChallenge(p.challenge.url);
  } catch (err) {
    if (!(err instanceof AcmeProblem && err.status < 500)) throw err;
    const authz = (await opts.account.getAuthorization(p.authzUrl)).json;
    const now = authz.challenges.find((c) => c.url === p.challenge.url);
    if (authz.status === "pending" && (!now || now.status === "pending")) throw err;
    opts.logger.debug(
      `the CA already has the challenge for ${p.authz.identifier.value} (${now?.status ?? authz.status})`,
    );
  }
}

/** RFC 8555 7.4: finalize with the CSR; orderNotReady for an order already processing or valid is not a failure. */
async function finalize(
  opts: ObtainOptions,
  order: Order,
  orderUrl: string,
  csr: Uint8Array,
): Promise<Order> {
  try {
    return (await opts.account.finalize(order, csr)).json;
  } catch (err) {
    if (!(err instanceof AcmeProblem && err.is("orderNotReady"))) throw err;
    const now = (await opts.account.getOrder(orderUrl)).json;
    if (now.status !== "processing" && now.status !== "valid") throw err;
    opts.logger.debug(`the order ${orderUrl} is ${now.status} already`);
    return now;
  }
}

/** Explains an invalid order: the failed authorizations' challenge errors, else the order's own error. */
async function orderInvalid(opts: ObtainOptions, order: Order, orderUrl: string): Promise<WileError> {
  const failures: ValidationFailure[] = [];
  for (const url of order.authorizations) {
    let authz: Authorization;
    try {
      authz = (await opts.account.getAuthorization(url)).json;
    } catch {
      continue;
    }
    if (authz.status !== "invalid") continue;
    const failed = authz.challenges.find((c) => c.status === "invalid") ?? authz.challenges[0];
    const err = isRecord(failed?.error) ? failed.error : {};
    const record = failed?.validationRecord?.find((r) => typeof r.url === "string");
    const fallbackUrl =
      failed?.type === "http-01" && failed.token
        ? `http://${hostForUrl(authz.identifier)}/.well-known/acme-challenge/${failed.token}`
        : undefined;
    failures.push({
      identifier: authz.identifier,
      challengeType: failed?.type ?? "unknown",
      url: typeof record?.url === "string" ? record.url : fallbackUrl,
      type: typeof err.type === "string" ? err.type : "unknown",
      detail: typeof err.detail === "string" ? printable(err.detail, 400) : "",
    });
  }
  if (failures.length > 0) return new ValidationError(failures);
  const err = isRecord(order.error) ? order.error : {};
  const detail = typeof err.detail === "string" ? err.detail : `the order ended ${order.status}`;
  return new WileError(`the CA did not issue the certificate (${orderUrl}): ${printable(detail, 400)}`);
}

function hostForUrl(id: Identifier): string {
  return id.type === "ip" && id.value.includes(":") ? `[${id.value}]` : id.value;
}

async function pickChain(
  opts: ObtainOptions,
  first: { pem: string; alternates: string[] },
  preferred: string,
  topIssuer: (pem: string) => string | null,
): Promise<string> {
  const want = preferred.trim().toLowerCase();
  const seen: string[] = [];
  const matches = (pem: string) => {
    const cn = topIssuer(pem);
    if (cn) seen.push(cn);
    return cn?.trim().toLowerCase() === want;
  };
  if (matches(first.pem)) return first.pem;
  for (const url of first.alternates) {
    const alt = await opts.account.downloadCertificate(url);
    if (matches(alt.pem)) {
      opts.logger.info(`Using the alternate chain to "${preferred}"`);
      return alt.pem;
    }
  }
  opts.logger.warn(
    `no chain leads to "${preferred}" (chains offered: ${seen.map((s) => `"${s}"`).join(", ")}); using the default chain`,
  );
  return first.pem;
}
