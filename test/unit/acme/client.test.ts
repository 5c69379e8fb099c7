import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import { AccountSession } from "../../../src/acme/account-session";
import { AcmeClient } from "../../../src/acme/client";
import { toAccountKey } from "../../../src/acme/jws";
import { AcmeProblem } from "../../../src/acme/problem";
import { NetworkError } from "../../../src/acme/transport";
import type { WileError } from "../../../src/util/errors";
import { type HttpsDouble, startHttpsDouble } from "../../helpers/https-double";

/**
 * A scripted ACME server double for what Pebble 2.4.0 cannot show: Retry-After, a finalize
 * answer without Location, 5xx answers, oversized and slow answers. Each test sets `route`.
 */
type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let base = "";
let ca = "";
let route: Handler = () => {};
let nonceCounter = 0;
const requests: Array<{ method: string; url: string; body: string; ua: string | undefined }> = [];

function directory(res: ServerResponse) {
  send(res, 200, {
    newNonce: `${base}/nonce`,
    newAccount: `${base}/acct`,
    newOrder: `${base}/order`,
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    "content-type": status >= 400 ? "application/problem+json" : "application/json",
    "replay-nonce": `nonce${++nonceCounter}`,
    ...headers,
  });
  res.end(JSON.stringify(body));
}

function protectedHeader(body: string): Record<string, unknown> {
  const jws = JSON.parse(body) as { protected: string };
  return JSON.parse(Buffer.from(jws.protected, "base64url").toString());
}

let double: HttpsDouble;
before(async () => {
  double = await startHttpsDouble();
  base = double.base;
  ca = double.ca;
  double.route = (req, body, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", body, ua: req.headers["user-agent"] });
    if (req.url === "/dir") return directory(res);
    if (req.url === "/nonce") {
      res.writeHead(200, { "replay-nonce": `nonce${++nonceCounter}` });
      return res.end();
    }
    route(req, body, res);
  };
});

after(() => double.close());

beforeEach(() => {
  requests.length = 0;
});

/** An account session on a fresh client for the double. */
async function account(extra: { sleeps?: number[]; timeoutMs?: number } = {}) {
  const c = new AcmeClient({
    directoryUrl: `${base}/dir`,
    userAgent: "wile/test",
    extraCa: ca,
    sleep: async (ms) => {
      extra.sleeps?.push(ms);
    },
    ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}),
  });
  const key = await toAccountKey(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
  return new AccountSession(c, key, `${base}/acct/1`);
}

const order = (status: string, extra: Record<string, unknown> = {}) => ({
  status,
  identifiers: [{ type: "dns", value: "a.example" }],
  authorizations: [`${base}/authz/1`],
  finalize: `${base}/finalize/1`,
  ...extra,
});

describe("AcmeClient against a scripted server", () => {
  test("badNonce: signed again with the nonce from the error response, never the same JWS twice", async () => {
    let n = 0;
    route = (_req, _body, res) => {
      n++;
      if (n <= 2) return send(res, 400, { type: "urn:ietf:params:acme:error:badNonce", detail: "stale" });
      send(res, 200, order("pending"));
    };
    const c = await account();
    const res = await c.getOrder(`${base}/order/1`);
    assert.equal(res.json.status, "pending");
    const posts = requests.filter((r) => r.url === "/order/1");
    assert.equal(posts.length, 3);
    const nonces = posts.map((p) => protectedHeader(p.body).nonce);
    assert.equal(new Set(nonces).size, 3, "each attempt carries a different nonce");
    assert.equal(new Set(posts.map((p) => p.body)).size, 3, "each attempt is signed afresh");
    assert.equal(
      requests.filter((r) => r.url === "/nonce").length,
      1,
      "newNonce only when the pool is empty",
    );
    c.client.close();
  });

  test("directory, newNonce and the signed requests share one TLS connection (newNonce by GET)", async () => {
    route = (_req, _body, res) => send(res, 200, order("pending"));
    const before = double.connections;
    const c = await account();
    await c.getOrder(`${base}/order/1`);
    await c.getOrder(`${base}/order/1`);
    // The double answers HEAD /nonce without Content-Length, as Pebble does: Node then closes the
    // connection, and the next request would pay a second handshake.
    assert.equal(double.connections - before, 1, "one handshake");
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.url}`),
      ["GET /dir", "GET /nonce", "POST /order/1", "POST /order/1"],
    );
    c.client.close();
  });

  test("User-Agent is sent on every request, and the url header is the exact URL", async () => {
    route = (_req, _body, res) => send(res, 200, order("pending"));
    const c = await account();
    await c.getOrder(`${base}/order/1?x=1`);
    assert.ok(requests.every((r) => r.ua === "wile/test"));
    const post = requests.find((r) => r.url === "/order/1?x=1");
    assert.equal(protectedHeader(post?.body ?? "").url, `${base}/order/1?x=1`);
    c.client.close();
  });

  test("poll honours Retry-After in seconds and as an HTTP-date, else backs off from 25 ms", async () => {
    let n = 0;
    route = (_req, _body, res) => {
      n++;
      if (n === 1) return send(res, 200, order("processing"), { "retry-after": "3" });
      if (n === 2) {
        return send(res, 200, order("processing"), {
          "retry-after": new Date(Date.now() + 7_000).toUTCString(),
        });
      }
      if (n < 5) return send(res, 200, order("processing"));
      send(res, 200, order("valid", { certificate: `${base}/cert/1` }));
    };
    const sleeps: number[] = [];
    const c = await account({ sleeps });
    const o = await c.poll(
      () => c.getOrder(`${base}/order/1`),
      (x) => x.status === "valid",
      Date.now() + 60_000,
      "test",
    );
    assert.equal(o.status, "valid");
    assert.equal(sleeps[0], 3000);
    assert.ok((sleeps[1] ?? 0) > 5000 && (sleeps[1] ?? 0) <= 7000, `HTTP-date honoured (${sleeps[1]})`);
    assert.deepEqual(sleeps.slice(2), [100, 200], "backoff continues doubling without Retry-After");
    c.client.close();
  });

  test("poll gives up at the deadline with a clear error", async () => {
    route = (_req, _body, res) => send(res, 200, order("processing"));
    const c = await account({ sleeps: [] });
    await assert.rejects(
      c.poll(
        () => c.getOrder(`${base}/order/1`),
        (x) => x.status === "valid",
        Date.now() - 1,
        "the CA to issue",
      ),
      /gave up waiting for the CA to issue/,
    );
    c.client.close();
  });

  test("poll sends no request that would start too close to the deadline: it sleeps to it and says so", async () => {
    let fetches = 0;
    route = (_req, _body, res) => {
      fetches++;
      send(res, 200, order("processing"));
    };
    // The fake sleep returns at once, as a timer that fires a little before Date.now() reaches the
    // deadline would: the poll must not go on asking (each request would be cut by the deadline).
    const sleeps: number[] = [];
    const c = await account({ sleeps });
    await assert.rejects(
      c.poll(
        () => c.getOrder(`${base}/order/1`),
        (x) => x.status === "valid",
        Date.now() + 1000,
        "the CA to issue",
      ),
      /gave up waiting for the CA to issue: .*order\/1 still says "processing" at the deadline/,
    );
    // 25, 50, 100, 200 ms of backoff fit with 250 ms to spare; then the rest of the time is slept.
    assert.ok(fetches <= 6, `${fetches} requests`);
    const last = sleeps[sleeps.length - 1] ?? 0;
    assert.ok(last > 0 && last <= 1000, `slept ${sleeps.join(", ")}`);
    c.client.close();
  });

  test("finalize without a Location header still works (the order URL is polled)", async () => {
    route = (req, _body, res) => {
      if (req.url === "/finalize/1") return send(res, 200, order("processing"));
      send(res, 200, order("valid", { certificate: `${base}/cert/1` }));
    };
    const c = await account();
    const fin = await c.finalize(order("ready") as never, new Uint8Array([0x30, 0x00]));
    assert.equal(fin.location, undefined);
    assert.equal(fin.json.status, "processing");
    const o = await c.poll(
      () => c.getOrder(`${base}/order/1`),
      (x) => x.status === "valid",
      Date.now() + 5000,
      "t",
    );
    assert.equal(o.certificate, `${base}/cert/1`);
    const finBody = JSON.parse(
      Buffer.from(
        JSON.parse(requests.find((r) => r.url === "/finalize/1")?.body ?? "{}").payload,
        "base64url",
      ).toString(),
    );
    assert.equal(finBody.csr, "MAA", "CSR sent as base64url DER");
    c.client.close();
  });

  test("5xx answers are retried with backoff, then the problem is reported", async () => {
    let n = 0;
    route = (_req, _body, res) => {
      n++;
      if (n < 3) return send(res, 503, { type: "urn:ietf:params:acme:error:serverInternal", detail: "busy" });
      send(res, 200, order("pending"));
    };
    const sleeps: number[] = [];
    const c = await account({ sleeps });
    assert.equal((await c.getOrder(`${base}/order/1`)).json.status, "pending");
    assert.equal(sleeps.length, 2);
    assert.ok((sleeps[0] ?? 0) >= 500 && (sleeps[1] ?? 0) >= 1000, `backoff grows: ${sleeps}`);

    route = (_req, _body, res) =>
      send(res, 500, { type: "urn:ietf:params:acme:error:serverInternal", detail: "down" });
    await assert.rejects(
      c.getOrder(`${base}/order/1`),
      (e: unknown) =>
        e instanceof AcmeProblem &&
        e.is("serverInternal") &&
        e.status === 500 &&
        /down \(4 attempts\)$/.test(e.message),
    );
    c.client.close();
  });

  test("4xx problems are not retried and keep their type", async () => {
    route = (_req, _body, res) =>
      send(
        res,
        403,
        { type: "urn:ietf:params:acme:error:unauthorized", detail: "no" },
        { link: `<${base}/docs>;rel="help"` },
      );
    const c = await account({ sleeps: [] });
    await assert.rejects(
      c.getOrder(`${base}/order/1`),
      (e: unknown) => e instanceof AcmeProblem && e.is("unauthorized") && e.links[0] === `${base}/docs`,
    );
    assert.equal(requests.filter((r) => r.url === "/order/1").length, 1);
    c.client.close();
  });

  test("a response over the size cap is cut off", async () => {
    route = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ pad: "x".repeat(2 * 1024 * 1024) }));
    };
    const c = await account({ sleeps: [] });
    await assert.rejects(
      c.getOrder(`${base}/order/1`),
      /the answer from .*\/order\/1 is larger than 1048576 bytes; refused/,
    );
    c.client.close();
  });

  test("a server that never answers hits the timeout", async () => {
    route = () => {};
    const c = await account({ sleeps: [], timeoutMs: 300 });
    await assert.rejects(
      c.getOrder(`${base}/order/1`),
      (e: unknown) => e instanceof NetworkError && e.code === "ETIMEDOUT",
    );
    c.client.close();
  });

  test("an untrusted server certificate says to use --ca-bundle", async () => {
    const c = new AcmeClient({ directoryUrl: `${base}/dir`, userAgent: "wile/test", sleep: async () => {} });
    await assert.rejects(
      c.directory(),
      (e: unknown) => e instanceof NetworkError && /--ca-bundle/.test(e.hint ?? ""),
    );
    c.close();
  });

  test("http:// is refused", async () => {
    const c = new AcmeClient({ directoryUrl: "http://127.0.0.1:1/dir", userAgent: "wile/test" });
    await assert.rejects(c.directory(), /requires HTTPS/);
    c.close();
  });

  test("a document that is not a directory is named as such", async () => {
    const c = new AcmeClient({ directoryUrl: `${base}/notdir`, userAgent: "wile/test", extraCa: ca });
    route = (_req, _body, res) => send(res, 200, { hello: "world" });
    await assert.rejects(c.directory(), /not an ACME directory/);
    c.close();
  });

  test("certificate download returns alternates from Link rel=alternate", async () => {
    route = (_req, _body, res) => {
      res.writeHead(200, {
        "content-type": "application/pem-certificate-chain",
        "replay-nonce": `nonce${++nonceCounter}`,
        link: [
          `<${base}/cert/1/1>;rel="alternate"`,
          `<${base}/cert/1/2>;rel="alternate"`,
          `<${base}/dir>;rel="index"`,
        ],
      });
      res.end("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".repeat(2));
    };
    const c = await account();
    const dl = await c.downloadCertificate(`${base}/cert/1`);
    assert.deepEqual(dl.alternates, [`${base}/cert/1/1`, `${base}/cert/1/2`]);
    route = (_req, _body, res) => send(res, 200, { not: "pem" });
    await assert.rejects(c.downloadCertificate(`${base}/cert/2`), /not a PEM certificate chain/);
    c.client.close();
  });

  test("a redirect is not followed: the error names its target", async () => {
    route = (_req, _body, res) => {
      res.writeHead(301, { location: "https://ca.example/new-dir" });
      res.end();
    };
    const c = new AcmeClient({ directoryUrl: `${base}/moved`, userAgent: "wile/test", extraCa: ca });
    await assert.rejects(c.directory(), (e: unknown) => {
      assert.match(String(e), /redirect \(HTTP 301\) to https:\/\/ca\.example\/new-dir/);
      assert.match((e as WileError).hint ?? "", /--server/);
      return true;
    });
    c.close();
  });

  test("an answer that is not JSON (a proxy's HTML page) names its Content-Type", async () => {
    route = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/html", "replay-nonce": `nonce${++nonceCounter}` });
      res.end("<html>captive portal</html>");
    };
    const c = await account();
    await assert.rejects(
      c.getOrder(`${base}/order/1`),
      /with text\/html instead of JSON: <html>captive portal/,
    );
    c.client.close();
  });

  test("URLs from the CA must be https: an order with an http finalize URL is refused", async () => {
    route = (_req, _body, res) => send(res, 200, order("ready", { finalize: "http://ca.example/finalize" }));
    const c = await account();
    await assert.rejects(
      c.getOrder(`${base}/order/1`),
      /gives the finalize URL as http:\/\/ca\.example\/finalize, which is not an https:\/\/ URL/,
    );
    c.client.close();
  });

  test("withDeadline: a Retry-After past the deadline ends a poll at once, without sleeping", async () => {
    route = (_req, _body, res) => send(res, 200, order("processing"), { "retry-after": "86400" });
    const sleeps: number[] = [];
    const c = await account({ sleeps });
    const scoped = new AccountSession(c.client.withDeadline(60_000), c.key, c.url);
    await assert.rejects(
      scoped.poll(
        () => scoped.getOrder(`${base}/order/1`),
        (o) => o.status === "valid",
        Date.now() + 600_000,
        "it",
      ),
      /asks to come back after .* \(Retry-After\), past the deadline/,
    );
    assert.deepEqual(sleeps, []);
    c.client.close();
  });

  test("withDeadline: a 503 whose Retry-After is past the deadline is not retried", async () => {
    route = (_req, _body, res) =>
      send(
        res,
        503,
        { type: "urn:ietf:params:acme:error:serverInternal", detail: "later" },
        { "retry-after": "3600" },
      );
    const sleeps: number[] = [];
    const c = await account({ sleeps });
    const scoped = new AccountSession(c.client.withDeadline(60_000), c.key, c.url);
    await assert.rejects(
      scoped.getOrder(`${base}/order/1`),
      /The CA asks to try again after .* past the deadline/,
    );
    assert.deepEqual(sleeps, []);
    assert.equal(requests.filter((r) => r.url === "/order/1").length, 1);
    c.client.close();
  });

  test("withDeadline: a CA that never answers is given up at the deadline, not retried", async () => {
    route = () => {};
    const c = await account({ sleeps: [] });
    const scoped = new AccountSession(c.client.withDeadline(300), c.key, c.url);
    const started = Date.now();
    await assert.rejects(
      scoped.getOrder(`${base}/order/1`),
      /gave up at the deadline of 0 s: no complete answer/,
    );
    assert.ok(Date.now() - started < 2000);
    c.client.close();
  });
});
