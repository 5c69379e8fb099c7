import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import type { ChallengeContext } from "../acme/solver";
import type { Logger } from "../util/log";
import { printable } from "../util/text";
import { findResolve, type ResolveRule } from "./resolve";

/** What the http-01 preflight got back. */
export type FetchOutcome =
  /** An HTTP answer (after redirects), or a redirect the CA would not follow either (`problem`). */
  | { kind: "answer"; url: string; status: number; body: string; problem?: string }
  /** No HTTP answer at all: DNS failure, connection refused, timeout, TLS failure. */
  | { kind: "unreachable"; url: string; reason: string };

export interface FetchOptions {
  resolve: readonly ResolveRule[];
  /** For the whole chain of requests. */
  timeoutMs: number;
  maxBytes?: number;
  maxRedirects?: number;
}

/** What came back instead of the key authorization. */
export interface WrongAnswer {
  url: string;
  status: number;
  body: string;
  /** For messages: `HTTP 404 "..."`, with ` (after redirects, from URL)` when there were some. */
  answer: string;
}

/**
 * Fetches http://NAME/.well-known/acme-challenge/TOKEN as the CA will (RFC 8555 8.3) and compares
 * it with the key authorization (trailing whitespace ignored, as validators do). Returns undefined
 * when it is right, or when nothing answered at all (NAT without hairpinning, a firewall: wile
 * cannot tell, so it warns and goes on); otherwise what came back.
 */
export async function checkServed(
  ctx: ChallengeContext,
  opts: FetchOptions,
  logger: Logger,
): Promise<WrongAnswer | undefined> {
  const { type, value } = ctx.identifier;
  const host = type === "ip" && value.includes(":") ? `[${value}]` : value;
  const url = `http://${host}/.well-known/acme-challenge/${ctx.token}`;
  const got = await fetchLikeValidator(url, opts);
  if (got.kind === "unreachable") {
    logger.warn(
      `Preflight for ${value}: could not fetch ${got.url} (${got.reason}); this may be NAT without hairpinning, going on.`,
    );
    return undefined;
  }
  if (got.status === 200 && got.problem === undefined && got.body.trimEnd() === ctx.keyAuthorization) {
    logger.debug(`Preflight for ${value}: ${url} serves the right content`);
    return undefined;
  }
  const via = got.url === url ? "" : ` (after redirects, from ${got.url})`;
  const what = got.problem
    ? `with ${got.problem} (last: HTTP ${got.status})`
    : `HTTP ${got.status} "${printable(got.body, 80)}"`;
  return { url, status: got.status, body: got.body, answer: `${what}${via}` };
}

/**
 * GET `url` the way an ACME validator does: follow up to 10 redirects to http or https, accept any
 * certificate on https, read at most 64 KiB. Never throws for network trouble: that is reported as
 * "unreachable" so the caller can tell it apart from a wrong answer.
 */
export async function fetchLikeValidator(url: string, opts: FetchOptions): Promise<FetchOutcome> {
  const { maxBytes = 64 * 1024, maxRedirects = 10 } = opts;
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let current = new URL(url);
  for (let hops = 0; ; hops++) {
    let res: { status: number; location: string | undefined; body: string };
    try {
      res = await abortable(getOnce(current, opts.resolve, maxBytes, signal), signal);
    } catch (e) {
      const reason = signal.aborted ? `timed out after ${opts.timeoutMs} ms` : (e as Error).message;
      return { kind: "unreachable", url: current.href, reason };
    }
    const answer = { kind: "answer" as const, url: current.href, status: res.status, body: res.body };
    if (![301, 302, 303, 307, 308].includes(res.status) || res.location === undefined) return answer;
    if (hops >= maxRedirects) return { ...answer, problem: `more than ${maxRedirects} redirects` };
    let next: URL;
    try {
      next = new URL(res.location, current);
    } catch {
      return { ...answer, problem: `redirect to an invalid URL "${res.location}"` };
    }
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      return { ...answer, problem: `redirect to ${next.href}, which is not http or https` };
    }
    current = next;
  }
}

async function getOnce(
  url: URL,
  rules: readonly ResolveRule[],
  maxBytes: number,
  signal: AbortSignal,
): Promise<{ status: number; location: string | undefined; body: string }> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const secure = url.protocol === "https:";
  const rule = findResolve(rules, host);
  let port = Number(url.port || (secure ? 443 : 80));
  let address = host;
  if (rule) {
    address = rule.address;
    if (!secure && url.port === "") port = rule.port;
  } else if (isIP(host) === 0) {
    address = (await lookup(host)).address;
  }
  const options: https.RequestOptions = {
    host: address,
    port,
    path: `${url.pathname}${url.search}`,
    method: "GET",
    headers: { Host: url.host, "User-Agent": "wile-preflight", Accept: "*/*", Connection: "close" },
    agent: false,
    signal,
  };
  if (secure) {
    options.rejectUnauthorized = false;
    if (isIP(host) === 0) options.servername = host;
  }
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          location: res.headers.location,
          body: Buffer.concat(chunks).subarray(0, maxBytes).toString("utf8"),
        });
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= maxBytes) {
          res.destroy();
          done();
        }
      });
      res.on("end", done);
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** `p`, or a rejection as soon as `signal` aborts (DNS lookups cannot be cancelled themselves). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
