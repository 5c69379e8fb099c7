import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import { AcmeClient } from "../../../src/acme/client";
import { AcmeProblem } from "../../../src/acme/problem";
import { AriAnswerError, fetchRenewalWindow, parseRenewalInfo, pickInWindow } from "../../../src/renew/ari";
import { WileError } from "../../../src/util/errors";
import { type HttpsDouble, startHttpsDouble } from "../../helpers/https-double";

/** RFC 9773 appendix: the example CertID. */
const CERT_ID = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";

let srv: HttpsDouble;
let withAri = true;
let answer: (res: ServerResponse) => void = () => {};

before(async () => {
  srv = await startHttpsDouble();
  srv.route = (req, _body, res) => {
    if (req.url === "/dir") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          newNonce: `${srv.base}/nonce`,
          newAccount: `${srv.base}/acct`,
          newOrder: `${srv.base}/order`,
          ...(withAri ? { renewalInfo: `${srv.base}/renewal-info` } : {}),
        }),
      );
      return;
    }
    if (req.url?.startsWith("/renewal-info/")) return answer(res);
    res.writeHead(404);
    res.end();
  };
});
after(() => srv.close());
beforeEach(() => {
  srv.requests.length = 0;
  withAri = true;
});

function client(): AcmeClient {
  return new AcmeClient({
    directoryUrl: `${srv.base}/dir`,
    userAgent: "wile/test",
    extraCa: srv.ca,
    sleep: async () => {},
  });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return (res: ServerResponse) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };
}

async function fetchWith(a: (res: ServerResponse) => void) {
  answer = a;
  const c = client();
  try {
    return await fetchRenewalWindow(c, CERT_ID);
  } finally {
    c.close();
  }
}

const window = { start: "2026-12-01T00:00:00Z", end: "2026-12-03T00:00:00Z" };

describe("fetchRenewalWindow (RFC 9773 4.2)", () => {
  test("GETs <renewalInfo>/<CertID> unauthenticated and returns the window and Retry-After", async () => {
    const w = await fetchWith(
      json(
        200,
        { suggestedWindow: window, explanationURL: "https://ca.example/why" },
        { "retry-after": "21600" },
      ),
    );
    assert.ok(w);
    assert.equal(w.start.toISOString(), "2026-12-01T00:00:00.000Z");
    assert.equal(w.end.toISOString(), "2026-12-03T00:00:00.000Z");
    assert.equal(w.explanationURL, "https://ca.example/why");
    assert.equal(w.retryAfterMs, 21_600_000);
    const ari = srv.requests.filter((r) => r.url.startsWith("/renewal-info/"));
    assert.deepEqual(
      ari.map((r) => [r.method, r.url, r.body]),
      [["GET", `/renewal-info/${CERT_ID}`, ""]],
    );
  });

  test("no Retry-After -> retryAfterMs null; fractional seconds and offsets accepted", async () => {
    const w = await fetchWith(
      json(200, { suggestedWindow: { start: "2026-12-01T01:00:00.5+01:00", end: "2026-12-03T00:00:00Z" } }),
    );
    assert.equal(w?.retryAfterMs, null);
    assert.equal(w?.start.toISOString(), "2026-12-01T00:00:00.500Z");
    assert.equal(w?.explanationURL, undefined);
  });

  test("a JSON body without a JSON content type is still read", async () => {
    const w = await fetchWith((res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(JSON.stringify({ suggestedWindow: window }));
    });
    assert.equal(w?.end.toISOString(), "2026-12-03T00:00:00.000Z");
  });

  test("null when the directory has no renewalInfo (and no request is made)", async () => {
    withAri = false;
    assert.equal(await fetchWith(json(200, { suggestedWindow: window })), null);
    assert.equal(srv.requests.filter((r) => r.url.startsWith("/renewal-info/")).length, 0);
  });

  test("an explanationURL that is not http(s) is dropped", async () => {
    const w = await fetchWith(json(200, { suggestedWindow: window, explanationURL: "javascript:alert(1)" }));
    assert.equal(w?.explanationURL, undefined);
  });

  const broken: Array<[string, unknown]> = [
    ["no suggestedWindow", { explanationURL: "https://ca.example/" }],
    ["suggestedWindow not an object", { suggestedWindow: "soon" }],
    ["start missing", { suggestedWindow: { end: window.end } }],
    ["end before start", { suggestedWindow: { start: window.end, end: window.start } }],
    ["end equal to start", { suggestedWindow: { start: window.start, end: window.start } }],
    ["unparseable date", { suggestedWindow: { start: "tomorrow", end: window.end } }],
    ["not RFC 3339", { suggestedWindow: { start: "Tue, 01 Dec 2026 00:00:00 GMT", end: window.end } }],
    ["impossible date", { suggestedWindow: { start: "2026-13-45T00:00:00Z", end: window.end } }],
    ["a number", { suggestedWindow: { start: 1, end: 2 } }],
    ["not an object", [window]],
  ];
  for (const [what, body] of broken) {
    test(`broken answer (${what}) -> AriAnswerError`, async () => {
      await assert.rejects(fetchWith(json(200, body)), (e) => e instanceof AriAnswerError);
    });
  }

  test("invalid JSON -> WileError with the text made printable", async () => {
    await assert.rejects(fetchWith(json(200, "{not json\u001b[31m")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.ok(!e.message.includes("\u001b"), e.message);
      return true;
    });
    await assert.rejects(
      fetchWith((res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("<html>hello</html>");
      }),
      (e) => e instanceof AriAnswerError,
    );
  });

  test("HTTP 500 -> AcmeProblem (a WileError) after the client's retries", async () => {
    await assert.rejects(
      fetchWith(json(500, { type: "urn:ietf:params:acme:error:serverInternal", detail: "oops" })),
      (e: unknown) => e instanceof AcmeProblem && e.status === 500,
    );
    assert.ok(srv.requests.filter((r) => r.url.startsWith("/renewal-info/")).length >= 1);
  });

  test("an answer over the client's 1 MiB cap -> WileError (the transport's NetworkError)", async () => {
    const big = JSON.stringify({ suggestedWindow: window, pad: "x".repeat(2 * 1024 * 1024) });
    await assert.rejects(
      fetchWith(json(200, big)),
      (e: unknown) => e instanceof WileError && /larger/.test(e.message),
    );
  });

  test("HTTP 404 for an unknown certificate -> AcmeProblem", async () => {
    await assert.rejects(
      fetchWith((res) => {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("no such certificate");
      }),
      (e: unknown) => e instanceof AcmeProblem && e.status === 404,
    );
  });
});

describe("parseRenewalInfo / pickInWindow", () => {
  test("parseRenewalInfo names what failed", () => {
    assert.throws(
      () => parseRenewalInfo({ suggestedWindow: { start: window.end, end: window.start } }, "ARI for x"),
      /ARI for x is unusable: suggestedWindow ends/,
    );
  });

  test("pickInWindow is uniform over [start, end)", () => {
    const w = { start: new Date("2026-12-01T00:00:00Z"), end: new Date("2026-12-03T00:00:00Z") };
    assert.equal(pickInWindow(w, () => 0).toISOString(), "2026-12-01T00:00:00.000Z");
    assert.equal(pickInWindow(w, () => 0.5).toISOString(), "2026-12-02T00:00:00.000Z");
    assert.equal(pickInWindow(w, () => 0.25).toISOString(), "2026-12-01T12:00:00.000Z");
    const buckets = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const t = pickInWindow(w, Math.random).getTime();
      assert.ok(t >= w.start.getTime() && t < w.end.getTime());
      const b = Math.floor(((t - w.start.getTime()) / (w.end.getTime() - w.start.getTime())) * 4);
      buckets[b] = (buckets[b] ?? 0) + 1;
    }
    for (const n of buckets) assert.ok(n > 800 && n < 1200, `buckets ${buckets}`);
  });
});
