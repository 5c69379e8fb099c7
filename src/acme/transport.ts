import type { IncomingHttpHeaders } from "node:http";
import https from "node:https";
import { createSecureContext, rootCertificates, type SecureContext } from "node:tls";
import { WileError } from "../util/errors";
import { printable } from "../util/text";

export interface TransportOptions {
  /** Extra trusted CA certificates (PEM), added to Node's bundled roots: --ca-bundle. */
  extraCa?: string;
  userAgent: string;
  /** Per request: connect, send and receive everything. */
  timeoutMs?: number;
  /** Largest response body accepted. */
  maxBodyBytes?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  url: string;
}

/** A network-level failure (no HTTP answer): refused, reset, timed out, TLS failure. */
export class NetworkError extends WileError {
  readonly code: string;
  readonly url: string;
  constructor(url: string, code: string, message: string, hint?: string) {
    super(`cannot reach ${url}: ${message}`, hint === undefined ? {} : { hint });
    this.code = code;
    this.url = url;
  }
}

const TLS_TRUST_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * One HTTPS connection pool for one CA. Every request has a deadline and a size cap; only https:
 * URLs are accepted. It does not retry: retries belong to the caller, which must re-sign.
 */
export class Transport {
  private agent: https.Agent;
  /** Set while the agent trusts only --ca-bundle; see trustFailure(). */
  private extraCa: string | undefined;
  private readonly userAgent: string;
  readonly timeoutMs: number;
  private readonly maxBodyBytes: number;

  constructor(opts: TransportOptions) {
    // One SecureContext for all connections: given `ca` instead, Node would parse the roots again
    // for every connection (and hash them into every pool key). With --ca-bundle the bundle alone is
    // tried first, which is what a private CA needs; a server that it does not vouch for gets one
    // more try with the public roots added. (It saves no CPU: Node 20 parses its ~140 bundled roots,
    // about 18 ms, at the first context of a process either way, `ca` or not; docs/benchmarks.md.)
    this.extraCa = opts.extraCa;
    this.agent = makeAgent(
      opts.extraCa === undefined ? undefined : createSecureContext({ ca: opts.extraCa }),
    );
    this.userAgent = opts.userAgent;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;
  }

  /** `timeoutMs` overrides the transport's own for this request (a caller's deadline is nearer). */
  async request(
    method: "GET" | "HEAD" | "POST",
    url: string,
    body?: string,
    headers: Record<string, string> = {},
    timeoutMs = this.timeoutMs,
  ): Promise<HttpResponse> {
    try {
      return await this.attempt(method, url, body, headers, timeoutMs);
    } catch (err) {
      if (!(err instanceof NetworkError && TLS_TRUST_CODES.has(err.code) && this.extraCa !== undefined))
        throw err;
      // Not signed by the --ca-bundle: trust the public roots as well, from now on.
      const ca = [...rootCertificates, this.extraCa];
      this.extraCa = undefined;
      this.agent.destroy();
      this.agent = makeAgent(createSecureContext({ ca }));
      return this.attempt(method, url, body, headers, timeoutMs);
    }
  }

  private attempt(
    method: "GET" | "HEAD" | "POST",
    url: string,
    body: string | undefined,
    headers: Record<string, string>,
    timeoutMs: number,
  ): Promise<HttpResponse> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return Promise.reject(new WileError(`the CA gave an invalid URL: ${printable(url, 200)}`));
    }
    if (target.protocol !== "https:") {
      return Promise.reject(
        new WileError(`refusing to fetch ${printable(url, 200)}: ACME requires HTTPS (RFC 8555 6.1)`, {
          hint: "The CA's directory or one of its answers names a URL that is not https://: report this to the CA.",
        }),
      );
    }
    const maxBody = this.maxBodyBytes;
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const req = https.request(
        target,
        {
          method,
          agent: this.agent,
          headers: {
            "user-agent": this.userAgent,
            accept: "application/json, application/pem-certificate-chain;q=0.9, */*;q=0.1",
            "accept-language": "en",
            ...(body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBody) {
              fail(
                new WileError(`the answer from ${url} is larger than ${maxBody} bytes; refused`, {
                  hint: "No ACME answer is that large: the CA (or a proxy in front of it) is broken. Try again later or report it to the CA.",
                }),
              );
              return;
            }
            chunks.push(chunk);
          });
          res.on("error", (err) => fail(toNetworkError(url, err)));
          res.on("end", () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), url });
          });
        },
      );
      const timer = setTimeout(
        () => fail(new NetworkError(url, "ETIMEDOUT", `no complete answer within ${timeoutMs / 1000} s`)),
        Math.max(1, timeoutMs),
      );
      req.on("error", (err) => fail(toNetworkError(url, err)));
      req.end(body);
    });
  }

  /** Closes idle keep-alive sockets so the process can exit. */
  close(): void {
    this.agent.destroy();
  }
}

function makeAgent(secureContext: SecureContext | undefined): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets: 6, ...(secureContext ? { secureContext } : {}) });
}

function toNetworkError(url: string, err: Error & { code?: string }): NetworkError {
  const code = err.code ?? "ERR";
  if (TLS_TRUST_CODES.has(code)) {
    return new NetworkError(
      url,
      code,
      `the server's TLS certificate is not trusted (${err.message})`,
      "For a private or test CA, pass its root certificate with --ca-bundle FILE.",
    );
  }
  const hints: Record<string, string> = {
    ECONNREFUSED: "Nothing listens there: check the --server URL and that the CA is up.",
    ENOTFOUND: "The host name does not resolve: check the --server URL and this machine's DNS.",
    EAI_AGAIN: "DNS lookup failed for now: check this machine's resolver.",
    ETIMEDOUT: "Check the network path to the CA (firewall, proxy).",
    ECONNRESET:
      "The connection was cut before the answer arrived (by the CA, a proxy or a firewall). Run the command again; if it keeps happening, check the network path to the CA.",
  };
  return new NetworkError(url, code, `${err.message || code}`, hints[code]);
}

/** True for failures worth another attempt: network errors other than trust problems. */
export function isRetryableNetworkError(err: unknown): boolean {
  return err instanceof NetworkError && !TLS_TRUST_CODES.has(err.code);
}
