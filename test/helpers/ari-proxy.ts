/**
 * An ACME Renewal Information (RFC 9773) test double, because Pebble 2.4.0 has no ARI: an HTTPS
 * reverse proxy on 127.0.0.1 in front of a TestEnv's Pebble that
 *   - forwards every request to Pebble (method, path, headers, body) and hands back its answer
 *     (Replay-Nonce, Location, Link included), with absolute Pebble URLs in bodies and headers
 *     rewritten to the proxy's origin (the Host header is passed through, so Pebble's JWS `url`
 *     check and the URLs it generates already name the proxy; the rewrite is a safety net);
 *   - adds `renewalInfo: <proxy>/renewal-info` to the directory;
 *   - answers GET /renewal-info/<CertID> with what the test set through setWindow();
 *   - records every request, with the decoded JWS payload of POSTs (newOrder's `replaces`);
 *   - can refuse the next newOrder that carries `replaces` with 409 alreadyReplaced;
 *   - can replace the certificate chains Pebble serves (replaceCertificate), for forged chains.
 *
 * TLS: the proxy serves Pebble's own listener certificate (SAN IP:127.0.0.1, made by testenv.ts in
 * env.tmp), so env.caBundle trusts both, and `caBundle` is that file.
 */
import { existsSync, readFileSync } from "node:fs";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Agent, createServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { TestEnv } from "./testenv";

export type WindowAnswer =
  | {
      start: Date | string;
      end: Date | string;
      explanationURL?: string;
      /** Sent verbatim as the Retry-After header. */
      retryAfter?: string;
    }
  | {
      /** A raw answer: any status and body (sent as application/json). */
      status: number;
      body: string;
      headers?: Record<string, string>;
    };

export interface ProxyRequest {
  method: string;
  /** Path and query as requested, e.g. /order-plz or /renewal-info/<certID>. */
  path: string;
  /** For POSTs with a JWS body: the decoded payload ("" for POST-as-GET), else undefined. */
  payload?: unknown;
  /** For POSTs with a JWS body: the decoded protected header. */
  protectedHeader?: Record<string, unknown>;
  /** The status the client got. */
  status?: number;
  /** The problem type of an error answer (e.g. urn:ietf:params:acme:error:badNonce). */
  problemType?: string;
  /** True for newOrder requests. */
  newOrder: boolean;
}

export interface AriProxy {
  /** https://127.0.0.1:P/dir (same path as Pebble's). */
  directoryUrl: string;
  /** https://127.0.0.1:P */
  origin: string;
  /** PEM file trusting the proxy and Pebble's listener (for --ca-bundle). */
  caBundle: string;
  requests: ProxyRequest[];
  /** What GET /renewal-info/<certId> answers; "*" for any certificate not set explicitly. */
  setWindow(certId: string, answer: WindowAnswer): void;
  clearWindows(): void;
  /** The next newOrder carrying `replaces` is answered 409 alreadyReplaced (not forwarded). */
  rejectReplacesOnce(): void;
  /**
   * Every certificate download (a 200 answer of type application/pem-certificate-chain) is answered
   * with forge(the chain Pebble served) instead, until called with null.
   */
  replaceCertificate(forge: ((served: string) => string) | null): void;
  /** Requests for renewal information so far (optionally for one CertID). */
  renewalInfoRequests(certId?: string): ProxyRequest[];
  /**
   * Decoded payloads of newOrder requests so far, leaving out those Pebble refused with badNonce
   * (it rejects a share of good nonces on purpose, and the client then re-sends the same order).
   */
  newOrders(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

const ALREADY_REPLACED = "urn:ietf:params:acme:error:alreadyReplaced";
const BAD_NONCE = "urn:ietf:params:acme:error:badNonce";
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "content-length",
  "accept-encoding",
]);

export async function startAriProxy(env: TestEnv): Promise<AriProxy> {
  const certFile = join(env.tmp, "cert.pem");
  const keyFile = join(env.tmp, "key.pem");
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    throw new Error(`startAriProxy: Pebble's listener certificate is not at ${certFile} / ${keyFile}`);
  }
  const ca = readFileSync(env.caBundle);
  const upstream = new URL(env.directoryUrl);
  const upstreamOrigin = upstream.origin;
  const agent = new Agent({ keepAlive: true, ca });

  const windows = new Map<string, WindowAnswer>();
  const requests: ProxyRequest[] = [];
  let rejectReplaces = false;
  let forge: ((served: string) => string) | null = null;
  let origin = "";
  let newOrderPath = "";
  let newNoncePath = "";

  /** One request to Pebble; the answer body is kept whole. */
  const forward = (
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body: Buffer | null,
  ): Promise<{ status: number; headers: IncomingMessage["headers"]; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method,
          path,
          headers: body ? { ...headers, "content-length": String(body.length) } : headers,
          agent,
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`ari-proxy: timeout forwarding ${method} ${path}`)));
      req.on("error", reject);
      req.end(body ?? undefined);
    });

  const rewrite = (text: string) => text.split(upstreamOrigin).join(origin);

  const freshNonce = async (host: string): Promise<string | undefined> => {
    const r = await forward("HEAD", newNoncePath, { host, "user-agent": "wile-ari-proxy" }, null);
    const n = r.headers["replay-nonce"];
    return Array.isArray(n) ? n[0] : n;
  };

  const handle = async (req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const rec: ProxyRequest = { method, path, newOrder: method === "POST" && path === newOrderPath };
    requests.push(rec);
    if (method === "POST" && body.length > 0) decodeJws(body, rec);

    const reply = (status: number, headers: OutgoingHttpHeaders, out: Buffer | string) => {
      rec.status = status;
      const buf = typeof out === "string" ? Buffer.from(out) : out;
      res.writeHead(status, { ...headers, "content-length": String(buf.length) });
      res.end(method === "HEAD" ? undefined : buf);
    };

    if (path.startsWith("/renewal-info/") && (method === "GET" || method === "HEAD")) {
      const certId = decodeURIComponent(path.slice("/renewal-info/".length).split("?")[0] ?? "");
      const answer = windows.get(certId) ?? windows.get("*");
      if (!answer) {
        return reply(
          404,
          { "content-type": "application/problem+json" },
          JSON.stringify({
            type: "urn:ietf:params:acme:error:malformed",
            detail: `no window set for ${certId}`,
          }),
        );
      }
      if ("status" in answer) {
        return reply(answer.status, { "content-type": "application/json", ...answer.headers }, answer.body);
      }
      const iso = (d: Date | string) => (typeof d === "string" ? d : d.toISOString());
      return reply(
        200,
        {
          "content-type": "application/json",
          ...(answer.retryAfter === undefined ? {} : { "retry-after": answer.retryAfter }),
        },
        JSON.stringify({
          suggestedWindow: { start: iso(answer.start), end: iso(answer.end) },
          ...(answer.explanationURL ? { explanationURL: answer.explanationURL } : {}),
        }),
      );
    }

    const host = req.headers.host ?? new URL(origin).host;
    if (rec.newOrder && rejectReplaces && isRecord(rec.payload) && rec.payload.replaces !== undefined) {
      rejectReplaces = false;
      const nonce = await freshNonce(host);
      return reply(
        409,
        { "content-type": "application/problem+json", ...(nonce ? { "replay-nonce": nonce } : {}) },
        JSON.stringify({
          type: ALREADY_REPLACED,
          detail: `the certificate ${String(rec.payload.replaces)} has already been replaced (ari-proxy)`,
        }),
      );
    }

    const headers: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    }
    headers.host = host;
    const up = await forward(method, path, headers, body.length > 0 ? body : null);
    const outHeaders: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(up.headers)) {
      if (HOP_BY_HOP.has(k) || v === undefined) continue;
      outHeaders[k] = Array.isArray(v) ? v.map(rewrite) : rewrite(v);
    }
    let out = up.body;
    const type = String(up.headers["content-type"] ?? "");
    if (/json|text|pem/i.test(type) || type === "") {
      let text = rewrite(out.toString("utf8"));
      if (method === "GET" && path === upstream.pathname && up.status === 200) {
        const dir = JSON.parse(text) as Record<string, unknown>;
        dir.renewalInfo = `${origin}/renewal-info`;
        text = JSON.stringify(dir, null, 2);
      }
      if (forge && up.status === 200 && /pem-certificate-chain/i.test(type)) text = forge(text);
      out = Buffer.from(text);
    }
    if (up.status >= 400) {
      try {
        const problem = JSON.parse(out.toString("utf8")) as { type?: unknown };
        if (typeof problem.type === "string") rec.problemType = problem.type;
      } catch {}
    }
    reply(up.status, outHeaders, out);
  };

  const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, Buffer.concat(chunks), res).catch((err: Error) => {
        if (!res.headersSent) {
          res.writeHead(502, { "content-type": "text/plain" });
        }
        res.end(`ari-proxy: ${err.message}`);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Learn Pebble's newOrder and newNonce paths from its directory.
  const dir = await forward(
    "GET",
    upstream.pathname,
    { host: new URL(origin).host, "user-agent": "wile-ari-proxy" },
    null,
  );
  const d = JSON.parse(dir.body.toString("utf8")) as { newOrder: string; newNonce: string };
  newOrderPath = new URL(d.newOrder).pathname;
  newNoncePath = new URL(d.newNonce).pathname;

  return {
    directoryUrl: `${origin}${upstream.pathname}`,
    origin,
    caBundle: env.caBundle,
    requests,
    setWindow: (certId, answer) => {
      windows.set(certId, answer);
    },
    clearWindows: () => windows.clear(),
    rejectReplacesOnce: () => {
      rejectReplaces = true;
    },
    replaceCertificate: (f) => {
      forge = f;
    },
    renewalInfoRequests: (certId) =>
      requests.filter(
        (r) =>
          r.path.startsWith("/renewal-info/") &&
          (certId === undefined || r.path === `/renewal-info/${certId}`),
      ),
    newOrders: () =>
      requests
        .filter((r) => r.problemType !== BAD_NONCE)
        .filter((r) => r.newOrder && isRecord(r.payload))
        .map((r) => r.payload as Record<string, unknown>),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function decodeJws(body: Buffer, rec: ProxyRequest): void {
  try {
    const jws = JSON.parse(body.toString("utf8")) as { protected?: string; payload?: string };
    if (typeof jws.protected === "string") {
      rec.protectedHeader = JSON.parse(Buffer.from(jws.protected, "base64url").toString("utf8"));
    }
    if (typeof jws.payload === "string") {
      const text = Buffer.from(jws.payload, "base64url").toString("utf8");
      rec.payload = text === "" ? "" : JSON.parse(text);
    }
  } catch {
    // Not a JWS: recorded without a payload.
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
