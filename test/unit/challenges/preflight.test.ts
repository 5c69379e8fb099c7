import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { TLSSocket } from "node:tls";
import type { ChallengeContext } from "../../../src/acme/solver";
import { WebrootSolver } from "../../../src/challenges/http-01-webroot";
import { parseResolve } from "../../../src/challenges/resolve";
import { WileError } from "../../../src/util/errors";
import type { Logger } from "../../../src/util/log";
import { skipUnlessAvailable } from "../../helpers/ci";

const PREFIX = "/.well-known/acme-challenge/";
const keyAuth = (token: string) => `${token}.thumb`;
const ctx = (token: string, value = "example.com", type: "dns" | "ip" = "dns"): ChallengeContext => ({
  identifier: { type, value },
  token,
  keyAuthorization: keyAuth(token),
});

/** A stand-in for the operator's web server, answering per token. */
let server: Server;
let port: number;
let closedPort: number;
let httpsPort = 0;
const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
before(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    const token = (req.url ?? "").split("/").pop() ?? "";
    if (req.url === `${PREFIX}good`) res.end(`${keyAuth("good")}\r\n`);
    else if (req.url === `${PREFIX}redirected`) res.writeHead(302, { Location: "/final/redirected" }).end();
    else if (req.url === "/final/redirected") res.end(keyAuth("redirected"));
    else if (req.url === `${PREFIX}loop`) res.writeHead(301, { Location: `${PREFIX}loop` }).end();
    else if (req.url === `${PREFIX}wrong`) res.end("<html>\n<body>Welcome to nginx!</body></html>");
    else if (req.url === `${PREFIX}big`) res.end(`${keyAuth("big")}${" ".repeat(70 * 1024)}x`);
    else if (req.url === `${PREFIX}to-https`)
      res.writeHead(307, { Location: `https://example.com:${httpsPort}/tls` }).end();
    else if (req.url === `${PREFIX}hang`) setTimeout(() => res.end(keyAuth(token)), 3000).unref();
    else res.writeHead(404).end("404 page not found");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
});
after(() => {
  server.closeAllConnections();
  server.close();
});

function recorder(): Logger & { warnings: string[]; debugs: string[] } {
  const warnings: string[] = [];
  const debugs: string[] = [];
  return { warnings, debugs, info() {}, warn: (m) => warnings.push(m), debug: (m) => debugs.push(m) };
}

async function solver(spec?: string, timeoutMs?: number) {
  const webroot = join(await mkdtemp(join(tmpdir(), "wile-pre-")), "www");
  await mkdir(webroot);
  const logger = recorder();
  const resolve = [parseResolve(spec ?? `example.com:${port}:127.0.0.1`)];
  const s = new WebrootSolver({
    webroots: new Map([["example.com", webroot]]),
    logger,
    preflight: timeoutMs === undefined ? { resolve } : { resolve, timeoutMs },
  });
  return { s, logger, webroot };
}

describe("http-01 preflight", () => {
  test("the right content (trailing whitespace trimmed) passes, sent to the --resolve address with Host and User-Agent", async () => {
    const { s, logger } = await solver();
    seen.length = 0;
    await s.preflight(ctx("good"));
    assert.equal(logger.warnings.length, 0);
    assert.match(logger.debugs.join("\n"), /serves the right content/);
    assert.equal(seen[0]?.url, `${PREFIX}good`);
    assert.equal(seen[0]?.headers.host, "example.com");
    assert.equal(seen[0]?.headers["user-agent"], "wile-preflight");
  });

  test("404 is an error naming the identifier, the URL, the status, what came back and the webroot", async () => {
    const { s, webroot } = await solver();
    await assert.rejects(s.preflight(ctx("missing")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.ok(e.message.includes("example.com"));
      assert.ok(e.message.includes(`http://example.com${PREFIX}missing`), e.message);
      assert.ok(e.message.includes("404"));
      assert.ok(e.message.includes("404 page not found"));
      assert.ok(e.message.includes(webroot));
      assert.match(e.hint ?? "", /does not serve this webroot.*-w.*--no-preflight/s);
      return true;
    });
  });

  test("other content is an error showing it printable", async () => {
    const { s } = await solver();
    await assert.rejects(s.preflight(ctx("wrong")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.ok(e.message.includes("HTTP 200"));
      assert.ok(e.message.includes("<html> <body>Welcome to nginx!"), e.message);
      return true;
    });
  });

  test("a redirect to another path on the same server is followed", async () => {
    const { s, logger } = await solver();
    seen.length = 0;
    await s.preflight(ctx("redirected"));
    assert.deepEqual(
      seen.map((r) => r.url),
      [`${PREFIX}redirected`, "/final/redirected"],
    );
    assert.equal(logger.warnings.length, 0);
  });

  test("a redirect to https is followed and any certificate is accepted", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "wile-tls-"));
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    const r = spawnSync("openssl", [
      ...args,
      "-keyout",
      key,
      "-out",
      cert,
      "-subj",
      "/CN=selfsigned",
      "-days",
      "1",
    ]);
    const skip = skipUnlessAvailable(
      (r.error || r.status !== 0) && "openssl is needed to make a self-signed certificate",
    );
    if (skip) return t.skip(skip);
    let sni: string | undefined;
    const tls = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
      sni = (req.socket as TLSSocket).servername || undefined;
      res.end(req.url === "/tls" ? keyAuth("to-https") : "nope");
    });
    await new Promise<void>((r) => tls.listen(0, "127.0.0.1", r));
    httpsPort = (tls.address() as AddressInfo).port;
    try {
      const { s, logger } = await solver();
      await s.preflight(ctx("to-https"));
      assert.equal(logger.warnings.length, 0);
      assert.equal(sni, "example.com");
    } finally {
      tls.closeAllConnections();
      tls.close();
    }
  });

  test("more than 10 redirects is an error", async () => {
    const { s } = await solver();
    seen.length = 0;
    await assert.rejects(s.preflight(ctx("loop")), /more than 10 redirects/);
    assert.equal(seen.length, 11);
  });

  test("the body is capped at 64 KiB", async () => {
    const { s } = await solver();
    await s.preflight(ctx("big")); // the trailing "x" lies beyond the cap
  });

  test("connection refused is a warning, not an error", async () => {
    const { s, logger } = await solver(`example.com:${closedPort}:127.0.0.1`);
    await s.preflight(ctx("good"));
    assert.equal(logger.warnings.length, 1);
    assert.match(logger.warnings[0] ?? "", /example\.com.*ECONNREFUSED.*NAT without hairpinning/);
  });

  test("a timeout is a warning", async () => {
    const { s, logger } = await solver(undefined, 200);
    const started = Date.now();
    await s.preflight(ctx("hang"));
    assert.ok(Date.now() - started < 2000);
    assert.match(logger.warnings[0] ?? "", /timed out after 200 ms/);
  });

  test("a DNS failure is a warning", async () => {
    const webroot = await mkdtemp(join(tmpdir(), "wile-pre-"));
    const logger = recorder();
    const s = new WebrootSolver({
      webroots: new Map([["no-such-host.invalid", webroot]]),
      logger,
      preflight: { resolve: [], timeoutMs: 3000 },
    });
    await s.preflight(ctx("good", "no-such-host.invalid"));
    assert.match(logger.warnings[0] ?? "", /no-such-host\.invalid/);
  });

  test("an IPv6 identifier is fetched with the address in brackets", async () => {
    const webroot = await mkdtemp(join(tmpdir(), "wile-pre-"));
    const logger = recorder();
    const s = new WebrootSolver({
      webroots: new Map([["::1", webroot]]),
      logger,
      preflight: { resolve: [], timeoutMs: 1000 },
    });
    // Whatever answers on [::1]:80 (most likely nothing), the URL must be well formed.
    const said = await s.preflight(ctx("tok", "::1", "ip")).then(
      () => logger.warnings.join("\n"),
      (e: Error) => e.message,
    );
    assert.ok(said.includes(`http://[::1]${PREFIX}tok`), said);
  });

  test("disabled preflight contacts nothing", async () => {
    const s = new WebrootSolver({ webroots: new Map(), logger: recorder(), preflight: false });
    seen.length = 0;
    await s.preflight(ctx("missing"));
    assert.equal(seen.length, 0);
  });
});
