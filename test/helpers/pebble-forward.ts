/**
 * What the HTTPS proxies in front of a TestEnv's Pebble share (ari-proxy.ts, fault-proxy.ts): a
 * listener on 127.0.0.1 that serves Pebble's own listener certificate (SAN IP:127.0.0.1, made by
 * testenv.ts in env.tmp, so env.caBundle trusts it), hands each request with its whole body to a
 * handler, and a forwarder that sends a request on to Pebble and reads its whole answer.
 *
 * The Host header is passed through by the proxies, so Pebble's JWS `url` check and the URLs it
 * generates already name the proxy.
 */
import { existsSync, readFileSync } from "node:fs";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Agent, createServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { TestEnv } from "./testenv";

export interface UpstreamAnswer {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** Headers that belong to one hop (and content-length, which the proxies set themselves). */
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

/** `headers` without hop-by-hop ones, each value passed through `map`. */
export function endToEndHeaders(
  headers: IncomingHttpHeaders,
  map: (value: string) => string = (v) => v,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (HOP_BY_HOP.has(k) || v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(map) : map(v);
  }
  return out;
}

export interface PebbleForwarder {
  /** One request to Pebble; the answer body is kept whole. */
  forward(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body: Buffer | null,
  ): Promise<UpstreamAnswer>;
  close(): void;
}

export function pebbleForwarder(env: TestEnv, label: string): PebbleForwarder {
  const upstream = new URL(env.directoryUrl);
  const agent = new Agent({ keepAlive: true, ca: readFileSync(env.caBundle) });
  return {
    forward: (method, path, headers, body) =>
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
        req.on("timeout", () => req.destroy(new Error(`${label}: timeout forwarding ${method} ${path}`)));
        req.on("error", reject);
        req.end(body ?? undefined);
      }),
    close: () => agent.destroy(),
  };
}

export interface PebbleCertServer {
  /** https://127.0.0.1:P */
  origin: string;
  stop(): Promise<void>;
}

/**
 * An HTTPS server on a free port of 127.0.0.1 with Pebble's listener certificate. `handle` gets
 * each request once its body is read; when it rejects, the client gets a 502 naming `label`.
 */
export async function servePebbleCert(
  env: TestEnv,
  label: string,
  handle: (req: IncomingMessage, body: Buffer, res: ServerResponse) => Promise<void>,
): Promise<PebbleCertServer> {
  const certFile = join(env.tmp, "cert.pem");
  const keyFile = join(env.tmp, "key.pem");
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    throw new Error(`${label}: Pebble's listener certificate is not at ${certFile} / ${keyFile}`);
  }
  const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, Buffer.concat(chunks), res).catch((err: Error) => {
        if (res.destroyed) return;
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end(`${label}: ${err.message}`);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    origin: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
