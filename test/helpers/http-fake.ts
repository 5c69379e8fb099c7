/**
 * A scripted plain-HTTP server on 127.0.0.1 for unit tests of the HTTP API DNS providers
 * (src/dns/providers/*): every request is recorded with its headers and body, and `route` answers.
 * Plain HTTP because fetch in the test process cannot be told about a throwaway CA (the e2e tests
 * use HTTPS doubles, trusted through NODE_EXTRA_CA_CERTS in wile's environment).
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpFake {
  /** http://127.0.0.1:PORT */
  base: string;
  requests: FakeRequest[];
  route: (req: FakeRequest, res: ServerResponse) => void;
  close(): Promise<void>;
}

/** Answers `status` with `body` (an object as JSON, a string as text/xml when it starts with "<"). */
export function reply(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const type =
    typeof body !== "string" ? "application/json" : text.startsWith("<") ? "text/xml" : "text/plain";
  res.writeHead(status, { "Content-Type": type });
  res.end(text);
}

export async function startHttpFake(): Promise<HttpFake> {
  const fake: HttpFake = {
    base: "",
    requests: [],
    route: (_req, res) => reply(res, 404),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      fake.requests.push(r);
      fake.route(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
