import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AccountSession } from "../../../src/acme/account-session";
import { obtainCertificate, ValidationError } from "../../../src/acme/obtain";
import { AcmeProblem } from "../../../src/acme/problem";
import type { ChallengeContext, Solver } from "../../../src/acme/solver";
import type { Authorization, Identifier, Order } from "../../../src/acme/types";
import { silentLogger } from "../../../src/util/log";

/**
 * The order flow against a fake account session: what a hostile or unusual CA can send, and that solvers
 * are always cleaned up and never asked to validate before every name passed its preflight.
 */
interface Script {
  order: Order;
  /** A list is answered in turn (the last one repeats): the state before and after validation. */
  authzs: Record<string, Authorization | Authorization[]>;
  /** Order states returned by successive getOrder calls. */
  polls: Order[];
  chains?: Record<string, { pem: string; alternates: string[] }>;
  /** Thrown by respondChallenge / finalize instead of answering (a CA refusing a repeated request). */
  respondError?: Error;
  finalizeError?: Error;
}

function fakeAccount(s: Script) {
  const calls: string[] = [];
  const account = {
    key: { thumbprint: "THUMB" },
    async newOrder(ids: Identifier[], extra: Record<string, string> = {}) {
      calls.push(
        `newOrder ${ids.map((i) => i.value).join(",")}${Object.keys(extra).length ? ` ${JSON.stringify(extra)}` : ""}`,
      );
      return { url: "https://ca/order/1", order: s.order };
    },
    async getAuthorization(url: string) {
      calls.push(`authz ${url}`);
      const entry = s.authzs[url];
      const json = Array.isArray(entry) ? (entry.length > 1 ? entry.shift() : entry[0]) : entry;
      return { json: json as Authorization };
    },
    async respondChallenge(url: string) {
      calls.push(`respond ${url}`);
      if (s.respondError) throw s.respondError;
      return {};
    },
    async getOrder() {
      calls.push("getOrder");
      const next = s.polls.shift();
      if (!next) throw new Error("script ran out of order states");
      return { json: next, retryAfterMs: null };
    },
    async finalize() {
      calls.push("finalize");
      if (s.finalizeError) throw s.finalizeError;
      return { json: { ...s.order, status: "processing" } };
    },
    async downloadCertificate(url: string) {
      calls.push(`download ${url}`);
      return s.chains?.[url] ?? { pem: "LEAF", alternates: [] };
    },
    async poll<T>(fetch: () => Promise<{ json: T }>, done: (t: T) => boolean) {
      for (;;) {
        const r = await fetch();
        if (done(r.json)) return r.json;
      }
    },
  };
  return { account: account as unknown as AccountSession, calls };
}

function recordingSolver(opts: { failPreflightFor?: string } = {}) {
  const events: string[] = [];
  const solver: Solver = {
    type: "http-01",
    async present(ctx: ChallengeContext) {
      events.push(`present ${ctx.identifier.value} ${ctx.keyAuthorization}`);
    },
    async preflight(ctx: ChallengeContext) {
      events.push(`preflight ${ctx.identifier.value}`);
      if (ctx.identifier.value === opts.failPreflightFor)
        throw new Error(`preflight failed for ${ctx.identifier.value}`);
    },
    async cleanup(ctx: ChallengeContext) {
      events.push(`cleanup ${ctx.identifier.value}`);
    },
  };
  return { solver, events };
}

const dns = (value: string): Identifier => ({ type: "dns", value });
const order = (status: Order["status"], extra: Partial<Order> = {}): Order => ({
  status,
  identifiers: [dns("a.example"), dns("b.example")],
  authorizations: ["https://ca/authz/a", "https://ca/authz/b"],
  finalize: "https://ca/finalize/1",
  ...extra,
});
const authz = (value: string, status: Authorization["status"], token = `tok-${value[0]}`): Authorization => ({
  identifier: dns(value),
  status,
  challenges: [
    { type: "tls-alpn-01", url: `https://ca/chall/${value}/alpn`, status: "pending", token },
    { type: "future-01", url: `https://ca/chall/${value}/future`, status: "pending" },
    { type: "http-01", url: `https://ca/chall/${value}/http`, status: "pending", token },
  ],
});

function run(
  s: Script,
  solver: Solver,
  extra: { preferredChain?: string; profile?: string; replaces?: string } = {},
) {
  const { account, calls } = fakeAccount(s);
  const promise = obtainCertificate({
    account,
    identifiers: [dns("a.example"), dns("b.example")],
    solverFor: () => solver,
    csr: () => new Uint8Array([0x30, 0]),
    chainTopIssuer: (pem) => (pem.startsWith("ALT") ? "Alt Root" : "Default Root"),
    logger: silentLogger,
    deadline: Date.now() + 10_000,
    ...extra,
  });
  return { promise, calls };
}

describe("order flow (RFC 8555 7.4, 7.5)", () => {
  test("every name is presented and preflighted before the CA is asked to validate any", async () => {
    const { solver, events } = recordingSolver();
    const { promise, calls } = run(
      {
        order: order("pending"),
        authzs: {
          "https://ca/authz/a": authz("a.example", "pending"),
          "https://ca/authz/b": authz("b.example", "pending"),
        },
        polls: [order("ready"), order("valid", { certificate: "https://ca/cert/1" })],
      },
      solver,
    );
    assert.equal((await promise).pem, "LEAF");
    assert.deepEqual(events, [
      "present a.example tok-a.THUMB",
      "present b.example tok-b.THUMB",
      "preflight a.example",
      "preflight b.example",
      "cleanup a.example",
      "cleanup b.example",
    ]);
    assert.deepEqual(
      calls.filter((c) => c.startsWith("respond")),
      ["respond https://ca/chall/a.example/http", "respond https://ca/chall/b.example/http"],
      "only the http-01 challenge is answered; unknown types are ignored",
    );
  });

  test("a failed preflight stops before any challenge is answered, and cleans up", async () => {
    const { solver, events } = recordingSolver({ failPreflightFor: "b.example" });
    const { promise, calls } = run(
      {
        order: order("pending"),
        authzs: {
          "https://ca/authz/a": authz("a.example", "pending"),
          "https://ca/authz/b": authz("b.example", "pending"),
        },
        polls: [],
      },
      solver,
    );
    await assert.rejects(promise, /preflight failed for b.example/);
    assert.equal(calls.filter((c) => c.startsWith("respond")).length, 0);
    assert.ok(events.includes("cleanup a.example") && events.includes("cleanup b.example"));
  });

  test("already valid authorizations (reuse) are skipped", async () => {
    const { solver, events } = recordingSolver();
    const { promise, calls } = run(
      {
        order: order("pending"),
        authzs: {
          "https://ca/authz/a": authz("a.example", "valid"),
          "https://ca/authz/b": authz("b.example", "pending"),
        },
        polls: [order("ready"), order("valid", { certificate: "https://ca/cert/1" })],
      },
      solver,
    );
    await promise;
    assert.ok(!events.some((e) => e.includes("a.example")));
    assert.deepEqual(
      calls.filter((c) => c.startsWith("respond")),
      ["respond https://ca/chall/b.example/http"],
    );
  });

  test("an order that is ready at once (all authorizations reused) goes straight to finalize", async () => {
    const { solver, events } = recordingSolver();
    const { promise, calls } = run(
      { order: order("ready"), authzs: {}, polls: [order("valid", { certificate: "https://ca/cert/1" })] },
      solver,
    );
    await promise;
    assert.deepEqual(events, []);
    assert.deepEqual(calls.slice(0, 2), ["newOrder a.example,b.example", "finalize"]);
  });

  for (const token of ["../../etc/passwd", "a/b", "", "tok en", "tok%2F"]) {
    test(`a hostile challenge token ${JSON.stringify(token)} is refused before anything is written`, async () => {
      const { solver, events } = recordingSolver();
      const { promise } = run(
        {
          order: order("pending"),
          authzs: {
            "https://ca/authz/a": authz("a.example", "pending", token),
            "https://ca/authz/b": authz("b.example", "pending"),
          },
          polls: [],
        },
        solver,
      );
      await assert.rejects(promise, /unsafe challenge token/);
      assert.deepEqual(events, []);
    });
  }

  test("a CA that offers no http-01 says what it offers", async () => {
    const { solver } = recordingSolver();
    const only = authz("a.example", "pending");
    only.challenges = only.challenges.filter((c) => c.type !== "http-01");
    const { promise } = run(
      {
        order: order("pending"),
        authzs: { "https://ca/authz/a": only, "https://ca/authz/b": authz("b.example", "pending") },
        polls: [],
      },
      solver,
    );
    await assert.rejects(
      promise,
      /does not offer http-01 for a.example \(it offers: tls-alpn-01, future-01\)/,
    );
  });

  test("an invalid order lists each failed name with the URL the CA fetched and its detail", async () => {
    const { solver, events } = recordingSolver();
    const failed = authz("b.example", "invalid");
    const http = failed.challenges[2];
    if (http) {
      http.status = "invalid";
      http.error = {
        type: "urn:ietf:params:acme:error:unauthorized",
        detail: "Invalid response from http://b.example/x: 404",
      };
      http.validationRecord = [
        { url: "http://b.example/.well-known/acme-challenge/tok-b", hostname: "b.example" },
      ];
    }
    const { promise } = run(
      {
        order: order("pending"),
        authzs: {
          "https://ca/authz/a": [authz("a.example", "pending"), authz("a.example", "valid")],
          "https://ca/authz/b": [authz("b.example", "pending"), failed],
        },
        polls: [order("invalid")],
      },
      solver,
    );
    await assert.rejects(promise, (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.failures.length, 1);
      assert.equal(e.failures[0]?.url, "http://b.example/.well-known/acme-challenge/tok-b");
      assert.match(
        e.message,
        /b\.example \(http-01, CA fetched http:\/\/b\.example\/\.well-known\/acme-challenge\/tok-b\): Invalid response/,
      );
      return true;
    });
    assert.ok(
      events.includes("cleanup a.example") && events.includes("cleanup b.example"),
      "cleaned up on failure too",
    );
  });

  test("--preferred-chain picks the alternate whose top issuer matches, else keeps the default", async () => {
    const chains = {
      "https://ca/cert/1": { pem: "DEFAULT", alternates: ["https://ca/cert/1/1"] },
      "https://ca/cert/1/1": { pem: "ALT", alternates: [] },
    };
    const script = (): Script => ({
      order: order("ready"),
      authzs: {},
      polls: [order("valid", { certificate: "https://ca/cert/1" })],
      chains,
    });
    assert.equal(
      (await run(script(), recordingSolver().solver, { preferredChain: "alt root" }).promise).pem,
      "ALT",
    );
    assert.equal(
      (await run(script(), recordingSolver().solver, { preferredChain: "Other" }).promise).pem,
      "DEFAULT",
    );
    assert.equal((await run(script(), recordingSolver().solver).promise).pem, "DEFAULT");
  });

  test("newOrder carries the profile and the ARI replaces field when given", async () => {
    const { promise, calls } = run(
      { order: order("ready"), authzs: {}, polls: [order("valid", { certificate: "https://ca/cert/1" })] },
      recordingSolver().solver,
      { profile: "shortlived", replaces: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE" },
    );
    await promise;
    assert.equal(
      calls[0],
      'newOrder a.example,b.example {"replaces":"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE","profile":"shortlived"}',
    );
  });

  describe("a repeated request the CA refuses because it acted on the first (answer lost on the way)", () => {
    const refused = (type: string, status: number) =>
      new AcmeProblem({
        type: `urn:ietf:params:acme:error:${type}`,
        detail: "repeated",
        status,
        url: "https://ca/x",
      });
    const valid = order("valid", { certificate: "https://ca/cert/1" });
    const taken = (value: string): Authorization => {
      const a = authz(value, "pending");
      return {
        ...a,
        challenges: a.challenges.map((c) => (c.type === "http-01" ? { ...c, status: "processing" } : c)),
      };
    };

    test("finalize refused with orderNotReady for an order already valid: the order is used", async () => {
      const { promise, calls } = run(
        { order: order("ready"), authzs: {}, polls: [valid], finalizeError: refused("orderNotReady", 403) },
        recordingSolver().solver,
      );
      assert.equal((await promise).pem, "LEAF");
      assert.deepEqual(calls, [
        "newOrder a.example,b.example",
        "finalize",
        "getOrder",
        "download https://ca/cert/1",
      ]);
    });

    test("finalize refused with orderNotReady for an order still ready: the refusal is reported", async () => {
      const { promise } = run(
        {
          order: order("ready"),
          authzs: {},
          polls: [order("ready")],
          finalizeError: refused("orderNotReady", 403),
        },
        recordingSolver().solver,
      );
      await assert.rejects(promise, /orderNotReady/);
    });

    test("a challenge answer refused for a challenge already processing: validation goes on", async () => {
      const { promise, calls } = run(
        {
          order: order("pending", { authorizations: ["https://ca/authz/a"] }),
          authzs: { "https://ca/authz/a": [authz("a.example", "pending"), taken("a.example")] },
          polls: [valid],
          respondError: refused("malformed", 400),
        },
        recordingSolver().solver,
      );
      assert.equal((await promise).pem, "LEAF");
      assert.deepEqual(calls.slice(1, 4), [
        "authz https://ca/authz/a",
        "respond https://ca/chall/a.example/http",
        "authz https://ca/authz/a",
      ]);
    });

    test("a challenge answer refused for a challenge still pending: the refusal is reported", async () => {
      const { promise } = run(
        {
          order: order("pending", { authorizations: ["https://ca/authz/a"] }),
          authzs: { "https://ca/authz/a": authz("a.example", "pending") },
          polls: [valid],
          respondError: refused("malformed", 400),
        },
        recordingSolver().solver,
      );
      await assert.rejects(promise, /malformed/);
    });
  });
});
