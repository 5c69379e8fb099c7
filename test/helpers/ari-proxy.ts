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
 * The forwarding and TLS are pebble-proxy.ts's; `caBundle` is env.caBundle, which trusts both.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { startPebbleProxy } from "./pebble-proxy";
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

export async function startAriProxy(env: TestEnv): Promise<AriProxy> {
  const windows = new Map<string, WindowAnswer>();
  const requests: ProxyRequest[] = [];
  let rejectReplaces = false;
  let forge: ((served: string) => string) | null = null;
  let newOrderPath = "";
  let newNoncePath = "";

  const freshNonce = async (host: string): Promise<string | undefined> => {
    const r = await proxy.forwardRaw("HEAD", newNoncePath, { host, "user-agent": "wile-ari-proxy" }, null);
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

    if (rec.newOrder && rejectReplaces && isRecord(rec.payload) && rec.payload.replaces !== undefined) {
      rejectReplaces = false;
      const nonce = await freshNonce(req.headers.host ?? new URL(proxy.origin).host);
      return reply(
        409,
        { "content-type": "application/problem+json", ...(nonce ? { "replay-nonce": nonce } : {}) },
        JSON.stringify({
          type: ALREADY_REPLACED,
          detail: `the certificate ${String(rec.payload.replaces)} has already been replaced (ari-proxy)`,
        }),
      );
    }

    const up = await proxy.forward(req, body);
    let out = up.body;
    if (method === "GET" && path === proxy.directoryPath && up.status === 200) {
      const dir = JSON.parse(out.toString("utf8")) as Record<string, unknown>;
      dir.renewalInfo = `${proxy.origin}/renewal-info`;
      out = Buffer.from(JSON.stringify(dir, null, 2));
    }
    const type = String(up.headers["content-type"] ?? "");
    if (forge && up.status === 200 && /pem-certificate-chain/i.test(type)) {
      out = Buffer.from(forge(out.toString("utf8")));
    }
    if (up.status >= 400) {
      try {
        const problem = JSON.parse(out.toString("utf8")) as { type?: unknown };
        if (typeof problem.type === "string") rec.problemType = problem.type;
      } catch {}
    }
    reply(up.status, up.headers, out);
  };

  const proxy = await startPebbleProxy(env, handle);
  const origin = proxy.origin;

  // Learn Pebble's newOrder and newNonce paths from its directory.
  const dir = await proxy.forwardRaw(
    "GET",
    proxy.directoryPath,
    { host: new URL(origin).host, "user-agent": "wile-ari-proxy" },
    null,
  );
  const d = JSON.parse(dir.body.toString("utf8")) as { newOrder: string; newNonce: string };
  newOrderPath = new URL(d.newOrder).pathname;
  newNoncePath = new URL(d.newNonce).pathname;

  return {
    directoryUrl: `${origin}${proxy.directoryPath}`,
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
    stop: () => proxy.stop(),
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
