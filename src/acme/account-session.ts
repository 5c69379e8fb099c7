import { WileError } from "../util/errors";
import { isRecord, printable } from "../util/text";
import { type AcmeClient, type AcmeResponse, caUrl, requireLocation, type Signer } from "./client";
import { linksWithRel, parseLinks } from "./headers";
import type { AccountKey } from "./jws";
import type { Authorization, Challenge, Identifier, Order } from "./types";

/**
 * One account at one CA: signs every request with its key and its account URL (kid). The key and
 * URL are fixed when the session is made (a key rollover makes a new session), and the AcmeClient
 * underneath keeps no signing state, so sessions of several accounts can share one client (its
 * connection, directory and nonces) and run at the same time without ever signing for each other.
 */
export class AccountSession {
  readonly signer: Signer;

  constructor(
    readonly client: AcmeClient,
    readonly key: AccountKey,
    readonly url: string,
  ) {
    this.signer = Object.freeze({ key, kid: url });
  }

  /** A POST signed as this account; "" is POST-as-GET. */
  post<T = unknown>(url: string, payload: unknown, accept?: string): Promise<AcmeResponse<T>> {
    return this.client.post<T>(url, payload, this.signer, accept);
  }

  /** RFC 8555 7.4. */
  async newOrder(
    identifiers: Identifier[],
    extra: { replaces?: string; profile?: string } = {},
  ): Promise<{ url: string; order: Order }> {
    const dir = await this.client.directory();
    const res = await this.post<Order>(dir.newOrder, { identifiers, ...extra });
    const url = requireLocation(res, "newOrder");
    return { url, order: checkOrder(res.json, url) };
  }

  async getOrder(url: string): Promise<AcmeResponse<Order>> {
    const res = await this.post<Order>(url, "");
    return { ...res, json: checkOrder(res.json, url) };
  }

  async getAuthorization(url: string): Promise<AcmeResponse<Authorization>> {
    const res = await this.post<Authorization>(url, "");
    return { ...res, json: checkAuthorization(res.json, url) };
  }

  /** RFC 8555 7.5.1: tell the CA the challenge is ready. */
  async respondChallenge(url: string): Promise<Challenge> {
    const res = await this.post<Challenge>(url, {});
    return res.json;
  }

  /** RFC 8555 7.4: finalize with a DER CSR. The order URL is passed in because Location is optional here. */
  async finalize(order: Order, csrDer: Uint8Array): Promise<AcmeResponse<Order>> {
    const res = await this.post<Order>(order.finalize, { csr: Buffer.from(csrDer).toString("base64url") });
    return { ...res, json: checkOrder(res.json, order.finalize) };
  }

  /**
   * RFC 8555 7.4.2: the PEM chain, and the URLs of alternate chains from Link rel="alternate".
   */
  async downloadCertificate(url: string): Promise<{ pem: string; alternates: string[] }> {
    const res = await this.post(url, "", "application/pem-certificate-chain");
    const pem = res.body.toString("utf8");
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new WileError(
        `the CA answered ${url} with something that is not a PEM certificate chain: ${printable(pem, 80)}`,
      );
    }
    return { pem, alternates: linksWithRel(parseLinks(res.headers.link, url), "alternate") };
  }

  /** AcmeClient.poll, for the order flow's convenience. */
  poll<T>(
    fetch: () => Promise<AcmeResponse<T>>,
    done: (resource: T) => boolean,
    deadline: number,
    what: string,
  ): Promise<T> {
    return this.client.poll(fetch, done, deadline, what);
  }
}

const ORDER_STATES = new Set(["pending", "ready", "processing", "valid", "invalid"]);
const AUTHZ_STATES = new Set(["pending", "valid", "invalid", "deactivated", "expired", "revoked"]);

/** RFC 8555 7.1.3: the fields wile uses, of the right types; every URL https. */
function checkOrder(v: unknown, url: string): Order {
  const wrong = !isRecord(v)
    ? "not a JSON object"
    : typeof v.status !== "string" || !ORDER_STATES.has(v.status)
      ? "no valid status"
      : !Array.isArray(v.identifiers) || !v.identifiers.every(isIdentifier)
        ? "no valid identifiers"
        : !Array.isArray(v.authorizations) || !v.authorizations.every((a) => typeof a === "string")
          ? "no list of authorization URLs"
          : typeof v.finalize !== "string"
            ? "no finalize URL"
            : v.certificate !== undefined && typeof v.certificate !== "string"
              ? "a certificate URL that is not a string"
              : undefined;
  if (wrong !== undefined || !isRecord(v)) {
    throw new WileError(`the CA sent a malformed order from ${url}: ${wrong}`, { hint: MALFORMED_HINT });
  }
  const order = v as unknown as Order;
  for (const a of order.authorizations) caUrl(a, "an authorization URL", url);
  caUrl(order.finalize, "the finalize URL", url);
  if (order.certificate !== undefined) caUrl(order.certificate, "the certificate URL", url);
  return order;
}

function checkAuthorization(v: unknown, url: string): Authorization {
  const wrong = !isRecord(v)
    ? "not a JSON object"
    : typeof v.status !== "string" || !AUTHZ_STATES.has(v.status)
      ? "no valid status"
      : !isIdentifier(v.identifier)
        ? "no valid identifier"
        : !Array.isArray(v.challenges)
          ? "no list of challenges"
          : undefined;
  if (wrong !== undefined || !isRecord(v) || !Array.isArray(v.challenges)) {
    throw new WileError(`the CA sent a malformed authorization from ${url}: ${wrong}`, {
      hint: MALFORMED_HINT,
    });
  }
  const challenges = v.challenges.filter(
    (c): c is Challenge => isRecord(c) && typeof c.type === "string" && typeof c.url === "string",
  );
  for (const c of challenges) caUrl(c.url, `the ${printable(c.type, 20)} challenge URL`, url);
  return { ...(v as unknown as Authorization), challenges };
}

const MALFORMED_HINT = "The CA does not answer as RFC 8555 says: try again later, or report it to the CA.";

function isIdentifier(v: unknown): v is Identifier {
  return isRecord(v) && typeof v.type === "string" && typeof v.value === "string";
}
