/**
 * `wile issue --batch` and the CA's rate limits (src/flow/batch.ts), against a scripted ACME CA on
 * the HTTPS double with a fake clock for the pause (Pebble cannot answer rateLimited). Orders are
 * "ready" at once (as with reused authorizations), so each certificate is newOrder, finalize,
 * order poll, download, and the real issue flow (checked chain, store) runs for each.
 * - rateLimited with Retry-After 120 on one order: no new order reaches the CA before the CA's
 *   time, an order already under way finishes during the pause, the refused line is ordered again
 *   after it and every line is issued;
 * - Retry-After past --timeout: the refused line and the lines after it are reported failed with
 *   the CA's time, and the CA sees no other order;
 * - a CA that drops every new order: after 3 lines in a row could not reach it, the others are
 *   reported without an order being sent.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { AcmeClient } from "../../../src/acme/client";
import { ensureAccount } from "../../../src/flow/account";
import { type BatchItem, type BatchResult, type Clock, issueBatch } from "../../../src/flow/batch";
import { silentLogger } from "../../../src/util/log";
import { acmeReply, type HttpsDouble, startHttpsDouble } from "../../helpers/https-double";
import { renewalConfig } from "../../helpers/renewal";
import { makeCa, signLeaf, type TestCa } from "../../helpers/test-ca";
import { tempDir } from "../../helpers/wile";

/** Time for the rate-limit pause only: it moves when the test says. */
class FakeClock implements Clock {
  t = Date.parse("2030-01-01T00:00:00Z");
  private sleepers: Array<{ until: number; wake: () => void }> = [];
  private watchers: Array<() => void> = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      this.sleepers.push({ until: this.t + ms, wake });
      for (const w of this.watchers.splice(0)) w();
    });
  }
  /** Resolves once `n` waits are pending. */
  async sleeping(n: number): Promise<void> {
    while (this.sleepers.length < n) await new Promise<void>((r) => this.watchers.push(r));
  }
  advance(ms: number): void {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.until <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.until > this.t);
    for (const s of due) s.wake();
  }
}

let double: HttpsDouble;
let ca: TestCa;
let clock: FakeClock;
/** What reached the CA: kind, the first name of the order, the fake time. */
let seen: Array<{ kind: string; name: string; at: number }>;
/** Per name: the Retry-After (seconds) its next newOrder is refused with. */
let limit: Map<string, number>;
/** The CA drops the connection of every newOrder. */
let drop: boolean;
/** Runs before the CA answers a request (to hold an answer back until something has happened). */
let hold: (kind: string, name: string) => Promise<void>;
const orders = new Map<string, { names: string[]; cert?: string }>();

const payloadOf = (body: string): Record<string, unknown> => {
  const p = (JSON.parse(body) as { payload: string }).payload;
  return p === "" ? {} : JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
};

before(async () => {
  double = await startHttpsDouble();
  ca = makeCa(tempDir("wile-batch-ca-"), "wile test batch CA");
  const base = double.base;
  const order = (id: string) => {
    const o = orders.get(id) as { names: string[]; cert?: string };
    return {
      status: o.cert ? "valid" : "ready",
      identifiers: o.names.map((value) => ({ type: "dns", value })),
      authorizations: [],
      finalize: `${base}/order/${id}/finalize`,
      ...(o.cert ? { certificate: `${base}/cert/${id}` } : {}),
    };
  };
  double.route = async (req, body, res) => {
    const url = req.url ?? "";
    if (url === "/dir") {
      return acmeReply(res, 200, {
        newNonce: `${base}/nonce`,
        newAccount: `${base}/acct`,
        newOrder: `${base}/new-order`,
      });
    }
    if (url === "/nonce") return acmeReply(res, 200, undefined);
    const payload = payloadOf(body);
    if (url === "/acct") {
      if (payload.onlyReturnExisting) {
        return acmeReply(res, 400, { type: "urn:ietf:params:acme:error:accountDoesNotExist", detail: "no" });
      }
      return acmeReply(res, 201, { status: "valid" }, { location: `${base}/acct/1` });
    }
    if (url === "/new-order") {
      const names = (payload.identifiers as Array<{ value: string }>).map((i) => i.value);
      const name = names[0] as string;
      seen.push({ kind: "newOrder", name, at: clock.now() });
      if (drop) return req.socket.destroy();
      await hold("newOrder", name);
      const retryAfter = limit.get(name);
      if (retryAfter !== undefined) {
        limit.delete(name);
        seen.push({ kind: "rateLimited", name, at: clock.now() });
        return acmeReply(
          res,
          429,
          {
            type: "urn:ietf:params:acme:error:rateLimited",
            detail: `too many new orders recently: see https://ca.example/rate-limits`,
          },
          { "retry-after": String(retryAfter) },
        );
      }
      const id = String(orders.size + 1);
      orders.set(id, { names });
      return acmeReply(res, 201, order(id), { location: `${base}/order/${id}` });
    }
    const m = /^\/(order|cert)\/(\d+)(\/finalize)?$/.exec(url);
    const o = m ? orders.get(m[2] as string) : undefined;
    if (m && o) {
      const id = m[2] as string;
      const name = o.names[0] as string;
      if (m[3]) {
        seen.push({ kind: "finalize", name, at: clock.now() });
        await hold("finalize", name);
        const der = Buffer.from(payload.csr as string, "base64url");
        const csrPem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE REQUEST-----\n`;
        o.cert = signLeaf(ca, csrPem, { sans: o.names.map((n) => `DNS:${n}`) });
        return acmeReply(res, 200, order(id));
      }
      if (m[1] === "order") return acmeReply(res, 200, order(id));
      return acmeReply(res, 200, (o.cert as string) + ca.pem);
    }
    acmeReply(res, 404, { type: "urn:ietf:params:acme:error:malformed", detail: `no ${url}` });
  };
});

after(() => double.close());

beforeEach(() => {
  clock = new FakeClock();
  seen = [];
  limit = new Map();
  hold = async () => {};
  drop = false;
});

/** Issues `names` (one certificate each) as a batch in a fresh home. */
async function batch(names: string[], opts: { parallel: number; timeoutMs: number; attempts?: number }) {
  const home = tempDir("wile-batch-home-");
  const client = new AcmeClient({
    directoryUrl: `${double.base}/dir`,
    userAgent: "wile-test",
    extraCa: double.ca,
    ...(opts.attempts ? { attempts: opts.attempts } : {}),
  });
  const items: BatchItem[] = names.map((name, i) => ({
    line: i + 1,
    force: false,
    cfg: { ...renewalConfig(name), server: `${double.base}/dir`, preflight: false },
  }));
  const finished: BatchResult[] = [];
  try {
    await ensureAccount(
      client,
      { home, directoryUrl: `${double.base}/dir`, account: "default", email: [] },
      silentLogger,
    );
    const results = await issueBatch(items, {
      home,
      loggerFor: () => silentLogger,
      client,
      parallel: opts.parallel,
      timeoutMs: opts.timeoutMs,
      verifyWaitMs: 0,
      onResult: (r) => finished.push({ ...r, at: clock.now() } as BatchResult),
      clock,
    });
    return { results, finished, home };
  } finally {
    client.close();
  }
}

test("rateLimited pauses new orders until the CA's Retry-After; an order under way finishes; the refused line is ordered again after", async () => {
  const t0 = clock.now();
  limit.set("b.example", 120);
  // The CA refuses b's order only once a's order is under way, and finalizes a only after that.
  let aOrdered!: () => void;
  const aIsOrdered = new Promise<void>((r) => {
    aOrdered = r;
  });
  let bRefused!: () => void;
  const bIsRefused = new Promise<void>((r) => {
    bRefused = r;
  });
  hold = async (kind, name) => {
    if (kind === "newOrder" && name === "a.example") aOrdered();
    if (kind === "newOrder" && name === "b.example" && limit.has("b.example")) {
      await aIsOrdered;
      setImmediate(bRefused);
    }
    if (kind === "finalize" && name === "a.example") await bIsRefused;
  };
  const run = batch(["a.example", "b.example", "c.example"], { parallel: 2, timeoutMs: 300_000 });
  // b waits for the CA's time, then c too (a's worker took it after a was issued).
  await Promise.race([
    clock.sleeping(2),
    run.then((r) => assert.fail(`the batch ended without pausing: ${JSON.stringify(r.results)}`)),
  ]);
  const during = seen.map((s) => `${s.kind} ${s.name}`);
  assert.deepEqual(
    during.filter((s) => s.startsWith("newOrder")).sort(),
    ["newOrder a.example", "newOrder b.example"],
    "no new order during the pause",
  );
  assert.ok(during.includes("finalize a.example"), "a's order went on during the pause");
  clock.advance(120_000);
  const { results, finished, home } = await run;
  assert.deepEqual(
    results.map((r) => [r.line, r.name, r.status]),
    [
      [1, "a.example", "issued"],
      [2, "b.example", "issued"],
      [3, "c.example", "issued"],
    ],
    JSON.stringify(results),
  );
  assert.equal((finished[0] as BatchResult & { at: number }).name, "a.example");
  assert.equal((finished[0] as BatchResult & { at: number }).at, t0, "a was issued while the pause went on");
  const after = seen.filter((s) => s.kind === "newOrder").slice(2);
  assert.deepEqual(after.map((s) => s.name).sort(), ["b.example", "c.example"]);
  for (const s of after) assert.ok(s.at >= t0 + 120_000, `${s.name} ordered at the CA's time or later`);
  assert.equal(seen.filter((s) => s.kind === "rateLimited").length, 1);
  for (const r of results) assert.ok(r.path?.startsWith(join(home, "certs")));
});

test("a Retry-After past --timeout: the lines are reported with the CA's time and not ordered", async () => {
  const t0 = clock.now();
  limit.set("a.example", 3600);
  const { results } = await batch(["a.example", "b.example", "c.example"], {
    parallel: 1,
    timeoutMs: 300_000,
  });
  const retryAt = new Date(t0 + 3_600_000).toISOString();
  for (const r of results) {
    assert.equal(r.status, "failed", JSON.stringify(r));
    assert.equal(r.retryAfter, retryAt);
  }
  assert.match(results[0]?.reason ?? "", /rateLimited.*too many new orders/);
  assert.match(results[1]?.reason ?? "", new RegExp(`no new orders before ${retryAt}`));
  assert.deepEqual(
    seen.map((s) => `${s.kind} ${s.name}`),
    ["newOrder a.example", "rateLimited a.example"],
    "one order reached the CA",
  );
});

test("a CA that stops answering: after 3 lines in a row could not reach it, no more orders are sent", async () => {
  drop = true;
  const names = ["a.example", "b.example", "c.example", "d.example", "e.example"];
  const { results } = await batch(names, { parallel: 1, timeoutMs: 300_000, attempts: 1 });
  assert.deepEqual(
    results.map((r) => r.status),
    ["failed", "failed", "failed", "failed", "failed"],
  );
  for (const r of results.slice(0, 3))
    assert.match(r.reason ?? "", /^cannot reach https:\/\/127\.0\.0\.1:\d+\/new-order/);
  for (const r of results.slice(3)) {
    assert.match(
      r.reason ?? "",
      /^not ordered: the CA at 127\.0\.0\.1:\d+ did not answer for the last 3 certificates/,
    );
  }
  assert.deepEqual(
    seen.map((s) => `${s.kind} ${s.name}`),
    ["newOrder a.example", "newOrder b.example", "newOrder c.example"],
  );
});
