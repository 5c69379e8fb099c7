import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import type { Identifier } from "../acme/types";
import { findResolve, type ResolveRule } from "./resolve";

/** Where the CA fetches an http-01 challenge: http://NAME/.well-known/acme-challenge/TOKEN ([IPv6]). */
export function challengeUrl(identifier: Identifier, token: string): string {
  const { type, value } = identifier;
  const host = type === "ip" && value.includes(":") ? `[${value}]` : value;
  return `http://${host}/.well-known/acme-challenge/${token}`;
}

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
