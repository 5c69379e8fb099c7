import { WileError } from "../util/errors";
import { isRecord, printable } from "../util/text";
import { type AcmeClient, type AcmeResponse, requireLocation, type Signer } from "./client";
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

function checkOrder(v: unknown, url: string): Order {
  if (
    !isRecord(v) ||
    typeof v.status !== "string" ||
    !ORDER_STATES.has(v.status) ||
    !Array.isArray(v.authorizations) ||
    !v.authorizations.every((a) => typeof a === "string") ||
    typeof v.finalize !== "string" ||
    (v.certificate !== undefined && typeof v.certificate !== "string")
  ) {
    throw new WileError(`the CA sent a malformed order from ${url}`);
  }
  return v as unknown as Order;
}

function checkAuthorization(v: unknown, url: string): Authorization {
  if (
    !isRecord(v) ||
    typeof v.status !== "string" ||
    !AUTHZ_STATES.has(v.status) ||
    !isRecord(v.identifier) ||
    typeof v.identifier.value !== "string" ||
    !Array.isArray(v.challenges)
  ) {
    throw new WileError(`the CA sent a malformed authorization from ${url}`);
  }
  const challenges = v.challenges.filter(
    (c): c is Challenge => isRecord(c) && typeof c.type === "string" && typeof c.url === "string",
  );
  return { ...(v as unknown as Authorization), challenges };
}
