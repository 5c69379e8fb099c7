import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import http from "node:http";
import { connect, createServer, type Server } from "node:net";
import { after, describe, test } from "node:test";
import type { ChallengeContext } from "../../../src/acme/solver";
import {
  DEFAULT_HTTP_PORT,
  parseHttpAddress,
  parseHttpPort,
  StandaloneSolver,
} from "../../../src/challenges/http-01-standalone";
import { parseSsHolders, portHolders } from "../../../src/challenges/listen-errors";
import { parseResolve } from "../../../src/challenges/resolve";
import { UsageError, WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { skipUnlessAvailable } from "../../helpers/ci";
import { freePort } from "../../helpers/testenv";

const PREFIX = "/.well-known/acme-challenge/";
const ctx = (token: string, value = "example.com"): ChallengeContext => ({
  identifier: { type: "dns", value },
  token,
  keyAuthorization: `${token}.thumbprint_-0`,
});

const open: StandaloneSolver[] = [];
after(async () => {
  await Promise.all(open.map((s) => s.close()));
});

async function listening(opts: Partial<ConstructorParameters<typeof StandaloneSolver>[0]> = {}) {
  const s = new StandaloneSolver({
    port: 0,
    address: "127.0.0.1",
    logger: silentLogger,
    preflight: false,
    ...opts,
  });
  await s.open();
  open.push(s);
  return s;
}

function get(
  port: number,
  path: string,
  opts: { method?: string; host?: string; agent?: http.Agent; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: opts.host ?? "127.0.0.1",
        port,
        path,
        method: opts.method ?? "GET",
        agent: opts.agent ?? false,
        headers: opts.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Writes `raw` on a new connection and returns everything the server sends until it closes. */
function rawExchange(port: number, raw: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    sock.on("data", (c) => chunks.push(c));
    sock.on("close", () => resolve(Buffer.concat(chunks).toString()));
    sock.on("error", (e: NodeJS.ErrnoException) =>
      // The server may close while the rest of a huge request is still being written.
      e.code === "EPIPE" || e.code === "ECONNRESET" ? resolve(Buffer.concat(chunks).toString()) : reject(e),
    );
    sock.write(raw);
    sock.setTimeout(5000, () => sock.destroy(new Error("no close within 5 s")));
  });
}

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

describe("StandaloneSolver: what the listener answers", () => {
  test("the key authorization of a current token as text/plain, for GET and HEAD", async () => {
    const s = await listening();
    await s.present(ctx("tok_en-1"));
    const r = await get(s.port, `${PREFIX}tok_en-1`, { host: "127.0.0.1" });
    assert.equal(r.status, 200);
    assert.equal(r.body, "tok_en-1.thumbprint_-0");
    assert.match(r.headers["content-type"] ?? "", /^text\/plain/);
    const h = await get(s.port, `${PREFIX}tok_en-1`, { method: "HEAD" });
    assert.equal(h.status, 200);
    assert.equal(h.body, "");
    assert.equal(h.headers["content-length"], String("tok_en-1.thumbprint_-0".length));
  });

  test("404 for other tokens, other paths, the directory itself and other methods", async () => {
    const s = await listening();
    await s.present(ctx("current"));
    for (const path of [
      `${PREFIX}other`,
      PREFIX,
      "/.well-known/acme-challenge",
      "/",
      "/index.html",
      `${PREFIX}current/`,
      `${PREFIX}current?x=1`,
      `${PREFIX}..%2Fcurrent`,
      `/x${PREFIX}current`,
    ]) {
      const r = await get(s.port, path);
      assert.equal(r.status, 404, path);
      assert.doesNotMatch(r.body, /current/, `${path} reveals nothing`);
    }
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS"]) {
      assert.equal((await get(s.port, `${PREFIX}current`, { method })).status, 404, method);
    }
  });

  test("only the tokens of the current order: a cleaned-up token is gone", async () => {
    const s = await listening();
    await s.present(ctx("first"));
    await s.present(ctx("second", "b.example"));
    await s.cleanup(ctx("first"));
    assert.equal((await get(s.port, `${PREFIX}first`)).status, 404);
    assert.equal((await get(s.port, `${PREFIX}second`)).body, "second.thumbprint_-0");
  });

  test("a huge request is refused without being read", async () => {
    const s = await listening();
    await s.present(ctx("tok"));
    const huge = `GET ${PREFIX}tok HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`;
    assert.match(await rawExchange(s.port, huge), /^HTTP\/1\.1 (431|400) /);
    const longUrl = `GET ${PREFIX}${"a".repeat(20_000)} HTTP/1.1\r\nHost: a\r\n\r\n`;
    assert.match(await rawExchange(s.port, longUrl), /^HTTP\/1\.1 (431|400|414) /);
    // A body (which a validator never sends) gets 413 and the connection is closed.
    const body = `GET ${PREFIX}tok HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\nxxxx`;
    const answer = await rawExchange(s.port, body);
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.doesNotMatch(answer, /thumbprint/);
    // The listener still serves afterwards.
    assert.equal((await get(s.port, `${PREFIX}tok`)).status, 200);
  });

  test("close() ends a keep-alive client's connection and frees the port at once", async () => {
    const s = await listening();
    await s.present(ctx("tok"));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const r = await get(s.port, `${PREFIX}tok`, { agent });
    assert.equal(r.status, 200);
    const port = s.port;
    // The client keeps its idle connection open.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(Object.values(agent.freeSockets).flat().length, 1, "a keep-alive connection is open");
    // And a client in the middle of a request (a slow or stuck validator): not idle, so
    // server.close() alone would wait for it.
    const slow = connect(port, "127.0.0.1");
    await new Promise((r) => slow.once("connect", r));
    slow.write(`GET ${PREFIX}tok HTTP/1.1\r\nHost: a\r\n`);
    const slowClosed = new Promise((r) => slow.once("close", r));
    slow.on("error", () => {});
    await new Promise((r) => setTimeout(r, 50));
    const closed = await Promise.race([
      s.close().then(() => true),
      new Promise((r) => setTimeout(r, 1000).unref()).then(() => false),
    ]);
    assert.ok(closed, "close() ended within 1 s despite the open connections");
    assert.ok(await bindable(port, "127.0.0.1"), "the port is free again");
    await slowClosed;
    await s.close();
    agent.destroy();
  });
});

describe("StandaloneSolver: binding", () => {
  test("without --http-address: every address, IPv4 and IPv6 on one socket", async (t) => {
    const s = new StandaloneSolver({ port: 0, logger: silentLogger, preflight: false });
    await s.open();
    open.push(s);
    await s.present(ctx("tok"));
    assert.equal((await get(s.port, `${PREFIX}tok`, { host: "127.0.0.1" })).status, 200);
    if (!existsSync("/proc/net/if_inet6")) return t.skip("no IPv6 on this machine");
    assert.equal(s.where, `[::]:${s.port}`);
    assert.equal((await get(s.port, `${PREFIX}tok`, { host: "::1" })).status, 200);
  });

  test("certificates renewed at once (cron --parallel) share one listener per port; the last closes it", async () => {
    const port = await freePort();
    const a = await listening({ port });
    const b = await listening({ port });
    await a.present(ctx("tok-a", "a.example"));
    await b.present(ctx("tok-b", "b.example"));
    assert.equal((await get(port, `${PREFIX}tok-a`)).status, 200);
    assert.equal((await get(port, `${PREFIX}tok-b`)).status, 200);
    await a.close();
    assert.equal((await get(port, `${PREFIX}tok-a`)).status, 404, "a's token left with a");
    assert.equal((await get(port, `${PREFIX}tok-b`)).body, "tok-b.thumbprint_-0", "b is still served");
    await b.close();
    assert.ok(await bindable(port, "127.0.0.1"), "the port is free after the last close");
    // And it can be opened again afterwards.
    const c = await listening({ port });
    await c.present(ctx("tok-c"));
    assert.equal((await get(port, `${PREFIX}tok-c`)).status, 200);
    await c.close();
  });

  test("a port in use: exit 2, the port and the program that holds it", async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const port = (holder.address() as { port: number }).port;
    try {
      const s = new StandaloneSolver({
        port,
        address: "127.0.0.1",
        logger: silentLogger,
        portHolders: async () => ["nginx (pid 1234)"],
      });
      const err = await s.open().then(
        () => assert.fail("open() succeeded"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof UsageError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}.*in use: nginx \\(pid 1234\\) holds it`));
      assert.match(err.hint ?? "", /-w DIR/);
      assert.match(err.hint ?? "", /--http-port PORT/);
      await s.close();
    } finally {
      holder.close();
    }
  });

  test("ss tells which process holds a port", {
    skip: skipUnlessAvailable(
      !existsSync("/usr/bin/ss") && !existsSync("/bin/ss") && "ss (iproute2) is not installed",
    ),
  }, async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const port = (holder.address() as { port: number }).port;
    try {
      const who = await portHolders(port);
      // Root sees every process; another user sees its own, and this one is its own.
      assert.ok(
        who?.some((w) => w.endsWith(`(pid ${process.pid})`)),
        JSON.stringify(who),
      );
    } finally {
      holder.close();
    }
  });

  test("parseSsHolders", () => {
    const out =
      'LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=12,fd=6),("nginx",pid=13,fd=6))\n' +
      'LISTEN 0 511 [::]:80 [::]:* users:(("nginx",pid=12,fd=7))\n';
    assert.deepEqual(parseSsHolders(out), ["nginx (pid 12)", "nginx (pid 13)"]);
    assert.deepEqual(parseSsHolders("LISTEN 0 511 0.0.0.0:80 0.0.0.0:*\n"), []);
    assert.deepEqual(parseSsHolders('users:(("a\\u001b[31m",pid=1,fd=3))'), ["a\\u001b[31m (pid 1)"]);
  });

  test("--http-port and --http-address are checked", () => {
    assert.equal(parseHttpPort(undefined), DEFAULT_HTTP_PORT);
    assert.equal(parseHttpPort("8080"), 8080);
    for (const bad of ["0", "65536", "80x", "-1", "8.5", ""])
      assert.throws(() => parseHttpPort(bad), UsageError, bad);
    assert.equal(parseHttpAddress(undefined), undefined);
    assert.equal(parseHttpAddress("192.0.2.1"), "192.0.2.1");
    assert.equal(parseHttpAddress("[2001:db8::1]"), "2001:db8::1");
    for (const bad of ["example.com", "300.1.1.1", "*"])
      assert.throws(() => parseHttpAddress(bad), UsageError, bad);
  });

  test("an address that is not this machine's: exit 2", async () => {
    const s = new StandaloneSolver({ port: 0, address: "192.0.2.77", logger: silentLogger });
    await assert.rejects(
      s.open(),
      (e: unknown) => e instanceof UsageError && /not an address of this machine/.test(e.message),
    );
  });
});

describe("StandaloneSolver: preflight", () => {
  test("passes when the name reaches this listener (--resolve)", async () => {
    const port = await freePort();
    const s = await listening({
      port,
      preflight: { resolve: [parseResolve(`a.example:${port}:127.0.0.1`)] },
    });
    await s.present(ctx("tok", "a.example"));
    await s.preflight(ctx("tok", "a.example"));
  });

  test("another server answering on the port: the forward is missing", async () => {
    const other = http.createServer((_q, r) => r.writeHead(404).end("nginx says no"));
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    const otherPort = (other.address() as { port: number }).port;
    try {
      const s = new StandaloneSolver({
        port: 0,
        address: "127.0.0.1",
        logger: silentLogger,
        preflight: { resolve: [parseResolve(`a.example:${otherPort}:127.0.0.1`)] },
      });
      await s.open();
      open.push(s);
      await s.present(ctx("tok", "a.example"));
      const err = await s.preflight(ctx("tok", "a.example")).then(
        () => assert.fail("preflight passed"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WileError && !(err instanceof UsageError));
      assert.match(err.message, /answered HTTP 404 "nginx says no", but not from wile's listener/);
      assert.match(err.hint ?? "", /forward from port 80 to \d+ is missing/);
    } finally {
      other.close();
    }
  });
});
