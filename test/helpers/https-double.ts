/**
 * A scripted HTTPS server on 127.0.0.1 with a throwaway self-signed certificate made by openssl,
 * for unit tests that need a real AcmeClient on the other end. Each test sets `route`; every
 * request is recorded.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type Route = (req: IncomingMessage, body: string, res: ServerResponse) => void;

export interface HttpsDouble {
  /** https://127.0.0.1:PORT */
  base: string;
  /** PEM of the server's self-signed certificate (trust it as extraCa). */
  ca: string;
  requests: Array<{ method: string; url: string; body: string }>;
  /** TLS connections accepted so far (each one a handshake). */
  connections: number;
  route: Route;
  close(): Promise<void>;
}

export async function startHttpsDouble(): Promise<HttpsDouble> {
  const tmp = mkdtempSync(join(tmpdir(), "wile-https-double-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        join(tmp, "key.pem"),
        "-out",
        join(tmp, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    const key = readFileSync(join(tmp, "key.pem"));
    const ca = readFileSync(join(tmp, "cert.pem"), "utf8");
    const double: HttpsDouble = {
      base: "",
      ca,
      requests: [],
      connections: 0,
      route: (_req, _body, res) => {
        res.writeHead(404);
        res.end();
      },
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
    const server = createServer({ key, cert: ca }, (req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        double.requests.push({ method: req.method ?? "", url: req.url ?? "", body });
        double.route(req, body, res);
      });
    });
    server.on("secureConnection", () => double.connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    double.base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return double;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

let nonces = 0;

/**
 * An answer of a scripted ACME CA: `body` as JSON (a problem document from status 400 on; no body
 * when undefined), or `pem` as a certificate chain, with a fresh Replay-Nonce.
 */
export function acmeReply(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const pem = typeof body === "string" && body.startsWith("-----BEGIN");
  res.writeHead(status, {
    "replay-nonce": `n${++nonces}`,
    "content-type": pem
      ? "application/pem-certificate-chain"
      : status >= 400
        ? "application/problem+json"
        : "application/json",
    ...headers,
  });
  res.end(body === undefined ? "" : pem ? body : JSON.stringify(body));
}
