/**
 * An HTTPS reverse proxy on 127.0.0.1 in front of a TestEnv's Pebble, for test doubles that change
 * some of Pebble's answers or the network (ari-proxy.ts, hostile-ca.ts, fault-proxy.ts). `handle` gets every request with its
 * whole body; `forward` passes one to Pebble and returns the answer whole, with absolute Pebble URLs
 * in the body and headers rewritten to the proxy's origin. The Host header is passed through, so
 * Pebble's JWS `url` check and the URLs it generates already name the proxy; the rewrite is a
 * safety net.
 *
 * TLS: the proxy serves Pebble's own listener certificate (SAN IP:127.0.0.1, made by testenv.ts in
 * env.tmp), so env.caBundle trusts both.
 */
import { existsSync, readFileSync } from "node:fs";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Agent, createServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { TestEnv } from "./testenv";

export interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface PebbleProxy {
  /** https://127.0.0.1:P */
  origin: string;
  /** Pebble's directory path, e.g. /dir. */
  directoryPath: string;
  /** One raw request to Pebble; the answer body is kept whole and not rewritten. */
  forwardRaw(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body: Buffer | null,
  ): Promise<Upstream>;
  /** `req` (with its `body`) passed to Pebble; the answer with URLs rewritten to the proxy. */
  forward(req: IncomingMessage, body: Buffer): Promise<Upstream>;
  /** Writes an answer (content-length set here; no body for HEAD). */
  reply(req: IncomingMessage, res: ServerResponse, up: Upstream): void;
  stop(): Promise<void>;
}

export type ProxyHandler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => Promise<void>;

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

export async function startPebbleProxy(env: TestEnv, handle: ProxyHandler): Promise<PebbleProxy> {
  const certFile = join(env.tmp, "cert.pem");
  const keyFile = join(env.tmp, "key.pem");
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    throw new Error(`pebble-proxy: Pebble's listener certificate is not at ${certFile} / ${keyFile}`);
  }
  const upstream = new URL(env.directoryUrl);
  const agent = new Agent({ keepAlive: true, ca: readFileSync(env.caBundle) });
  let origin = "";

  const forwardRaw: PebbleProxy["forwardRaw"] = (method, path, headers, body) =>
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
      req.on("timeout", () => req.destroy(new Error(`pebble-proxy: timeout forwarding ${method} ${path}`)));
      req.on("error", reject);
      req.end(body ?? undefined);
    });

  const rewrite = (text: string) => text.split(upstream.origin).join(origin);

  const forward: PebbleProxy["forward"] = async (req, body) => {
    const headers: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    }
    headers.host = req.headers.host ?? new URL(origin).host;
    const up = await forwardRaw(req.method ?? "GET", req.url ?? "/", headers, body.length > 0 ? body : null);
    const out: IncomingHttpHeaders = {};
    for (const [k, v] of Object.entries(up.headers)) {
      if (HOP_BY_HOP.has(k) || v === undefined) continue;
      (out as Record<string, string | string[]>)[k] = Array.isArray(v) ? v.map(rewrite) : rewrite(v);
    }
    const type = String(up.headers["content-type"] ?? "");
    const text = /json|text|pem/i.test(type) || type === "";
    return {
      status: up.status,
      headers: out,
      body: text ? Buffer.from(rewrite(up.body.toString("utf8"))) : up.body,
    };
  };

  const reply: PebbleProxy["reply"] = (req, res, up) => {
    res.writeHead(up.status, { ...up.headers, "content-length": String(up.body.length) });
    res.end(req.method === "HEAD" ? undefined : up.body);
  };

  const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, Buffer.concat(chunks), res).catch((err: Error) => {
        if (res.destroyed) return;
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end(`pebble-proxy: ${err.message}`);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    directoryPath: upstream.pathname,
    forwardRaw,
    forward,
    reply,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
