import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { silentLogger } from "../util/log";
import { isRecord, printable } from "../util/text";
import { linksWithRel, parseLinks, parseRetryAfter } from "./headers";
import { type AccountKey, externalAccountBinding, signRequest } from "./jws";
import { NoncePool } from "./nonce";
import { AcmeProblem, problemFromResponse } from "./problem";
import { type HttpResponse, isRetryableNetworkError, NetworkError, Transport } from "./transport";

/** RFC 8555 7.1.1, plus renewalInfo (RFC 9773) and meta.profiles (draft-ietf-acme-profiles). */
export interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert?: string;
  keyChange?: string;
  renewalInfo?: string;
  meta?: {
    termsOfService?: string;
    website?: string;
    caaIdentities?: string[];
    externalAccountRequired?: boolean;
    profiles?: Record<string, string>;
  };
}

export interface AcmeClientOptions {
  directoryUrl: string;
  userAgent: string;
  extraCa?: string;
  logger?: Logger;
  timeoutMs?: number;
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>;
  /** Attempts for network errors and 5xx answers (signed requests are re-signed each time). */
  attempts?: number;
}

/** Who signs one request: an account key with its URL (kid), or a bare key (jwk header). */
export interface Signer {
  readonly key: AccountKey;
  /** Account URL; absent for newAccount-style requests signed with the JWK. */
  readonly kid?: string;
}

/** The result of a POST or GET, with the JSON body parsed when it is JSON. */
export interface AcmeResponse<T = unknown> {
  status: number;
  headers: HttpResponse["headers"];
  body: Buffer;
  json: T;
  location: string | undefined;
  retryAfterMs: number | null;
  url: string;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A poll is not started with less time than this left before the deadline (see poll). */
const POLL_MIN_REQUEST_MS = 250;

/**
 * The connection to one CA: directory, nonces, signed requests with retries. It keeps no account:
 * every signed request names its signer, so one client can serve several accounts at once (the
 * requests of one account go through an AccountSession). No files, no environment, no console:
 * everything comes in through the options.
 */
export class AcmeClient {
  readonly directoryUrl: string;
  private readonly transport: Transport;
  private readonly nonces = new NoncePool();
  private readonly logger: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly attempts: number;
  private dir: Directory | undefined;
  /** The client whose connection, nonces and directory cache this one uses (itself, or the one withDeadline scoped). */
  private readonly shared: AcmeClient = this;
  /** Epoch ms at which every request, retry and poll of this operation stops (see withDeadline). */
  private deadline = Number.POSITIVE_INFINITY;
  private deadlineSeconds = 0;

  constructor(opts: AcmeClientOptions) {
    this.directoryUrl = opts.directoryUrl;
    this.transport = new Transport({
      userAgent: opts.userAgent,
      ...(opts.extraCa === undefined ? {} : { extraCa: opts.extraCa }),
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    });
    this.logger = opts.logger ?? silentLogger;
    this.sleep = opts.sleep ?? defaultSleep;
    this.attempts = opts.attempts ?? 4;
  }

  close(): void {
    this.transport.close();
  }

  /**
   * This client for one operation (one certificate) that must end within `ms`: it shares the
   * connection, nonces and directory (an object whose prototype is this one), and every request
   * timeout, retry and poll wait is cut to the deadline. A wait the CA asks for (Retry-After) that
   * ends after it fails at once instead of sleeping until the deadline for nothing.
   */
  withDeadline(ms: number): AcmeClient {
    const scoped = Object.create(this) as AcmeClient;
    scoped.deadline = Date.now() + ms;
    scoped.deadlineSeconds = Math.round(ms / 1000);
    return scoped;
  }

  /** Epoch ms at which this operation must end (withDeadline); Infinity when unscoped. */
  get deadlineAt(): number {
    return this.deadline;
  }

  /** The directory, fetched once. */
  async directory(): Promise<Directory> {
    if (this.shared.dir) return this.shared.dir;
    let res: AcmeResponse;
    try {
      res = await this.unsigned("GET", this.directoryUrl);
    } catch (err) {
      if (err instanceof AcmeProblem && (err.status === 404 || err.status === 410)) {
        throw new WileError(`there is no ACME directory at ${this.directoryUrl} (HTTP ${err.status})`, {
          hint: "Check the --server URL: it must be the CA's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory.",
        });
      }
      throw err;
    }
    const d = res.json;
    if (
      !isRecord(d) ||
      typeof d.newNonce !== "string" ||
      typeof d.newAccount !== "string" ||
      typeof d.newOrder !== "string"
    ) {
      throw new WileError(`${this.directoryUrl} is not an ACME directory (no newNonce/newAccount/newOrder)`, {
        hint: "Check the --server URL: it must be the CA's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory.",
      });
    }
    for (const field of ["newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"]) {
      if (d[field] !== undefined) caUrl(d[field], `the directory's ${field}`, this.directoryUrl);
    }
    this.shared.dir = d as unknown as Directory;
    return this.shared.dir;
  }

  /** RFC 8555 7.3.1: finds the account of `key` without creating one; null when there is none. */
  async findAccount(key: AccountKey): Promise<{ url: string; account: Record<string, unknown> } | null> {
    const dir = await this.directory();
    try {
      const res = await this.post(dir.newAccount, { onlyReturnExisting: true }, { key });
      return { url: requireLocation(res, "newAccount"), account: isRecord(res.json) ? res.json : {} };
    } catch (err) {
      if (err instanceof AcmeProblem && err.is("accountDoesNotExist")) return null;
      throw err;
    }
  }

  /** RFC 8555 7.3: registers (or, for a key the CA knows, finds) the account of `key`. */
  async newAccount(
    key: AccountKey,
    opts: {
      contact: string[];
      termsOfServiceAgreed: boolean;
      eab?: { kid: string; hmacKey: Uint8Array };
    },
  ): Promise<{ url: string; created: boolean; account: Record<string, unknown> }> {
    const dir = await this.directory();
    const payload: Record<string, unknown> = {
      termsOfServiceAgreed: opts.termsOfServiceAgreed,
      contact: opts.contact,
    };
    if (opts.eab)
      payload.externalAccountBinding = await externalAccountBinding(key, opts.eab, dir.newAccount);
    const res = await this.post(dir.newAccount, payload, { key });
    const url = requireLocation(res, "newAccount");
    return { url, created: res.status === 201, account: isRecord(res.json) ? res.json : {} };
  }

  /**
   * RFC 9773 4.1: unauthenticated GET of `<renewalInfo>/<certID>`. Null when the CA has no
   * renewalInfo in its directory. The body is returned unparsed for the caller to check.
   */
  async getRenewalInfo(certId: string): Promise<AcmeResponse | null> {
    const dir = await this.directory();
    if (!dir.renewalInfo) return null;
    const base = dir.renewalInfo.endsWith("/") ? dir.renewalInfo : `${dir.renewalInfo}/`;
    // Its caller reads a JSON body whatever the Content-Type (src/renew/ari.ts).
    return this.unsigned("GET", base + certId, { accept: "application/json, */*;q=0.5" });
  }

  /**
   * POST-as-GET until `done` says the resource is settled, honouring Retry-After, otherwise polling
   * at 25 ms doubling to 8 s, until the deadline (epoch ms).
   */
  async poll<T>(
    fetch: () => Promise<AcmeResponse<T>>,
    done: (resource: T) => boolean,
    deadline: number,
    what: string,
  ): Promise<T> {
    let delay = 25;
    const end = Math.min(deadline, this.deadline);
    const hint =
      "The CA is slow or stuck; run the command again later (authorizations already validated are reused).";
    for (;;) {
      const res = await fetch();
      if (done(res.json)) return res.json;
      const wait = res.retryAfterMs ?? delay;
      delay = Math.min(delay * 2, 8000);
      const status = isRecord(res.json) && typeof res.json.status === "string" ? res.json.status : "?";
      const stuck = (why: string) =>
        new WileError(`gave up waiting for ${what}: ${res.url} ${why}`, {
          hint: `${hint}${this.timeoutHint()}`,
        });
      const now = Date.now();
      if (now >= end) throw stuck(`still says "${printable(status, 20)}" at the deadline`);
      if (res.retryAfterMs !== null && now + res.retryAfterMs > end) {
        const when = new Date(now + res.retryAfterMs).toISOString();
        throw stuck(
          `says "${printable(status, 20)}" and asks to come back after ${when} (Retry-After), past the deadline`,
        );
      }
      // A poll that would start too close to the deadline to get an answer is not sent: the run
      // would end with "no complete answer in time" from the cut request, which says less than
      // what is known (the resource is still not settled). Sleep to the deadline and say that.
      const remaining = end - now;
      if (wait + POLL_MIN_REQUEST_MS >= remaining) {
        await this.sleep(remaining);
        throw stuck(`still says "${printable(status, 20)}" at the deadline`);
      }
      await this.sleep(Math.min(wait, 60_000));
    }
  }

  /** A signed POST with retries: badNonce (re-signed with the nonce from the error), 5xx and network errors (with backoff). */
  async post<T = unknown>(
    url: string,
    payload: unknown,
    signer: Signer,
    accept?: string,
  ): Promise<AcmeResponse<T>> {
    let badNonces = 0;
    for (let attempt = 1; ; attempt++) {
      const nonce = this.nonces.take() ?? (await this.freshNonce());
      const jws = await signRequest(
        signer.key,
        signer.kid === undefined ? { url, nonce } : { url, nonce, kid: signer.kid },
        payload,
      );
      try {
        return await this.send<T>("POST", url, JSON.stringify(jws), {
          "content-type": "application/jose+json",
          ...(accept ? { accept } : {}),
        });
      } catch (err) {
        if (err instanceof AcmeProblem && err.is("badNonce") && badNonces < 10) {
          badNonces++;
          attempt--;
          this.logger.debug(`badNonce from ${url}; signing again with a fresh nonce`);
          continue;
        }
        if (attempt < this.attempts && this.retryable(err)) {
          await this.backoff(attempt, err, url);
          continue;
        }
        throw this.gaveUp(err, attempt);
      }
    }
  }

  private async unsigned(
    method: "GET" | "HEAD",
    url: string,
    headers?: Record<string, string>,
  ): Promise<AcmeResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send(method, url, undefined, headers);
      } catch (err) {
        if (attempt < this.attempts && this.retryable(err)) {
          await this.backoff(attempt, err, url);
          continue;
        }
        throw this.gaveUp(err, attempt);
      }
    }
  }

  private async freshNonce(): Promise<string> {
    const dir = await this.directory();
    // GET, which RFC 8555 7.2 allows as well as HEAD: its 204 has no body by definition, so the
    // connection stays open. A HEAD answer without Content-Length (Pebble's) makes Node close it,
    // and the next request pays a new TLS handshake.
    await this.unsigned("GET", dir.newNonce);
    const nonce = this.nonces.take();
    if (!nonce) throw new WileError(`the CA's newNonce (${dir.newNonce}) gave no Replay-Nonce header`);
    return nonce;
  }

  private retryable(err: unknown): boolean {
    if (isRetryableNetworkError(err)) return true;
    return err instanceof AcmeProblem && err.status >= 500;
  }

  /** The error of the last attempt, saying how many were made when it was worth retrying. */
  private gaveUp(err: unknown, attempts: number): unknown {
    if (attempts > 1 && this.retryable(err)) (err as Error).message += ` (${attempts} attempts)`;
    return err;
  }

  private async backoff(attempt: number, err: unknown, url: string): Promise<void> {
    const base = 500 * 2 ** (attempt - 1);
    const hinted = err instanceof AcmeProblem ? err.retryAfterMs : null;
    const wait = Math.min(hinted ?? base + Math.floor(Math.random() * base * 0.2), 30_000);
    // No point in trying again after the deadline: the last error is the answer.
    if (Date.now() + (hinted ?? wait) >= this.deadline) {
      if (hinted === null || !(err instanceof WileError)) throw err;
      throw new WileError(
        `${err.message}\nThe CA asks to try again after ${new Date(Date.now() + hinted).toISOString()} (Retry-After), past the deadline.`,
        { hint: `Run the command again after that time.${this.timeoutHint()}` },
      );
    }
    const why =
      err instanceof NetworkError ? err.code : err instanceof AcmeProblem ? `HTTP ${err.status}` : "error";
    this.logger.debug(`${why} from ${url}; attempt ${attempt + 1} of ${this.attempts} in ${wait} ms`);
    await this.sleep(wait);
  }

  /** One request: nonce harvested, errors turned into AcmeProblem. */
  private async send<T>(
    method: "GET" | "HEAD" | "POST",
    url: string,
    body?: string,
    headers?: Record<string, string>,
  ): Promise<AcmeResponse<T>> {
    const left = this.deadline - Date.now();
    if (left <= 0) throw this.deadlineError(url);
    const timeoutMs = Math.min(this.transport.timeoutMs, left);
    let res: HttpResponse;
    try {
      res = await this.transport.request(method, url, body, headers, timeoutMs);
    } catch (err) {
      // Cut short by the deadline rather than by the transport's own timeout: not worth a retry.
      if (err instanceof NetworkError && err.code === "ETIMEDOUT" && timeoutMs < this.transport.timeoutMs)
        throw this.deadlineError(url);
      throw err;
    }
    this.nonces.add(res.headers["replay-nonce"]);
    const retryAfterMs = parseRetryAfter(res.headers["retry-after"]);
    if (res.status >= 300 && res.status < 400) {
      // Never followed: a signed request names its URL, and a directory that moved is the
      // operator's to confirm.
      const to = res.headers.location;
      const target = to === undefined ? "nowhere (no Location)" : printable(to, 200);
      throw new WileError(`the CA answered ${url} with a redirect (HTTP ${res.status}) to ${target}`, {
        hint:
          url === this.directoryUrl
            ? "wile does not follow redirects. If that is the CA's directory, give it with --server (and issue again with it for existing certificates)."
            : "ACME requests are not redirected (RFC 8555 signs each URL): the CA or a proxy in front of it is misconfigured; report it to the CA.",
      });
    }
    if (res.status >= 400) {
      throw problemFromResponse({
        status: res.status,
        body: res.body,
        contentType: res.headers["content-type"],
        url,
        retryAfterMs,
        links: linksWithRel(parseLinks(res.headers.link, url), "help"),
      });
    }
    let json: unknown;
    const type = res.headers["content-type"] ?? "";
    // Unless the caller accepts other types (a certificate, ARI), the answer must be JSON.
    const wantJson = method !== "HEAD" && headers?.accept === undefined;
    if (wantJson && res.body.length > 0 && !/^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type)) {
      // RFC 8555 7.1 (resources) and 6.7 (problems) fix the JSON media types: an HTML page from a
      // proxy or a captive portal is not an answer from the CA.
      throw new WileError(
        `the CA answered ${url} with ${type ? printable(type, 60) : "no Content-Type"} instead of JSON: ${printable(res.body.toString("utf8"), 80)}`,
        {
          hint: "The CA, or a proxy in front of it, is not answering as an ACME server: try again later, or check the --server URL.",
        },
      );
    }
    if (/json/i.test(type) && res.body.length > 0) {
      try {
        json = JSON.parse(res.body.toString("utf8"));
      } catch {
        throw new WileError(
          `the CA sent invalid JSON from ${url}: ${printable(res.body.toString("utf8"), 80)}`,
        );
      }
    }
    const loc = res.headers.location;
    return {
      status: res.status,
      headers: res.headers,
      body: res.body,
      json: json as T,
      location: loc === undefined ? undefined : caUrl(resolveUrl(loc, url), "the Location header", url),
      retryAfterMs,
      url,
    };
  }

  private deadlineError(url: string): WileError {
    return new WileError(
      `gave up at the deadline of ${this.deadlineSeconds} s: no complete answer from ${url} in time`,
      { hint: `The CA is slow or stuck; try again later.${this.timeoutHint()}` },
    );
  }

  private timeoutHint(): string {
    return this.deadline === Number.POSITIVE_INFINITY
      ? ""
      : ` (This run gave up after ${this.deadlineSeconds} s; --timeout SECONDS changes that.)`;
  }
}

/**
 * A URL the CA gave (`what`, in an answer from `from`), checked before wile ever requests it: an
 * absolute https: URL (RFC 8555 6.1). Another host is allowed: RFC 8555 does not tie the
 * directory's resources to the directory's origin, and every request is signed for its URL.
 */
export function caUrl(value: unknown, what: string, from: string): string {
  let url: URL | undefined;
  try {
    url = typeof value === "string" ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "https:") {
    const shown =
      typeof value === "string" ? printable(value, 120) : `a ${Array.isArray(value) ? "list" : typeof value}`;
    throw new WileError(
      `the CA (${from}) gives ${what} as ${shown || "an empty string"}, which is not an https:// URL`,
      {
        hint: "ACME requires HTTPS for every request (RFC 8555 6.1); nothing was fetched from it. Report this to the CA.",
      },
    );
  }
  return url.href;
}

function resolveUrl(value: string, base: string): string {
  try {
    return new URL(value, base).href;
  } catch {
    return value;
  }
}

/** The Location of a created resource; the CA must send one. */
export function requireLocation(res: AcmeResponse, what: string): string {
  if (!res.location) {
    throw new WileError(`the CA's ${what} answer (${res.url}) has no Location header`, {
      hint: "RFC 8555 requires one for a created resource: report this to the CA.",
    });
  }
  return res.location;
}
