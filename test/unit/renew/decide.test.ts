import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AcmeProblem } from "../../../src/acme/problem";
import { type CertInfo, formatSerial } from "../../../src/crypto/x509";
import { AriAnswerError, type RenewalWindow } from "../../../src/renew/ari";
import { type DecideInput, decide } from "../../../src/renew/decide";
import type { RenewalConfig } from "../../../src/store/renewal";
import { emptyState, type RenewalState } from "../../../src/store/state";
import type { Logger } from "../../../src/util/log";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const NOW = new Date("2026-11-23T12:00:00Z");
const NEXT_RUN = new Date(NOW.getTime() + 12 * HOUR);
/** RFC 9773 appendix A: AKI 69:88:5B:..., serial 00:87:65:43:21 -> this CertID. */
const RFC_AKI = Buffer.from("69885B6B87464041E1B37B847BA0AE2CDE01C8D4", "hex");
const RFC_SERIAL = Buffer.from("0087654321", "hex");
const RFC_CERT_ID = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";

function cert(notBefore: Date, lifetimeMs: number, aki: Buffer | null = RFC_AKI): CertInfo {
  return {
    serialHex: formatSerial(RFC_SERIAL),
    serialContent: RFC_SERIAL,
    authorityKeyId: aki,
    subjectKeyId: null,
    notBefore,
    notAfter: new Date(notBefore.getTime() + lifetimeMs),
    issuerCN: "Test CA",
    subjectCN: "a.example",
    issuer: "CN=Test CA",
    dnsNames: ["a.example"],
    ipAddresses: [],
    fingerprint256: "00",
    der: Buffer.alloc(0),
  };
}

/** 90-day certificate issued 10 days ago: fallback at day 60, ARI window whatever the test says. */
const fresh90 = cert(new Date(NOW.getTime() - 10 * DAY), 90 * DAY);
const cfg = { version: 1, name: "a.example" } as unknown as RenewalConfig;

interface Logged {
  info: string[];
  warn: string[];
}
function capture(): { log: Logger; lines: Logged } {
  const lines: Logged = { info: [], warn: [] };
  return {
    lines,
    log: { info: (m) => lines.info.push(m), warn: (m) => lines.warn.push(m), debug() {} },
  };
}

/** A fake ARI endpoint: answers from a script, counts calls. */
function fakeAri(answers: Array<RenewalWindow | null | Error>) {
  const calls: string[] = [];
  const fn = async (certId: string) => {
    calls.push(certId);
    const a = answers.length > 1 ? answers.shift() : answers[0];
    if (a instanceof Error) throw a;
    return a ?? null;
  };
  return { fn, calls };
}

const win = (startOffset: number, endOffset: number, extra: Partial<RenewalWindow> = {}): RenewalWindow => ({
  start: new Date(NOW.getTime() + startOffset),
  end: new Date(NOW.getTime() + endOffset),
  retryAfterMs: null,
  ...extra,
});

function input(over: Partial<DecideInput> = {}): DecideInput {
  return {
    name: "a.example",
    cert: fresh90,
    cfg,
    state: emptyState(),
    now: NOW,
    nextRun: NEXT_RUN,
    ari: null,
    random: () => 0.5,
    logger: capture().log,
    ...over,
  };
}

describe("decide: ARI (RFC 9773)", () => {
  test("window in the past -> due, replaces = the RFC 9773 example CertID", async () => {
    const ari = fakeAri([win(-3 * DAY, -1 * DAY)]);
    const d = await decide(input({ ari: ari.fn }));
    assert.equal(d.due, true);
    assert.equal(d.source, "ari");
    assert.equal(d.replaces, RFC_CERT_ID);
    assert.deepEqual(ari.calls, [RFC_CERT_ID]);
    assert.equal(d.renewAt?.toISOString(), new Date(NOW.getTime() - 2 * DAY).toISOString());
    assert.equal(d.state.ari?.certId, RFC_CERT_ID);
    assert.equal(d.state.ari?.chosen, d.renewAt?.toISOString());
  });

  test("window in the future and after the next run -> not due, renewAt = chosen", async () => {
    const ari = fakeAri([win(8 * DAY, 10 * DAY)]);
    const d = await decide(input({ ari: ari.fn, random: () => 0.25 }));
    assert.equal(d.due, false);
    assert.equal(d.source, "ari");
    assert.equal(d.renewAt?.toISOString(), new Date(NOW.getTime() + 8.5 * DAY).toISOString());
    assert.equal(d.replaces, RFC_CERT_ID);
    assert.equal(
      d.reason,
      `ARI window ${d.state.ari?.windowStart?.slice(0, 16)}Z..${d.state.ari?.windowEnd?.slice(0, 16)}Z (chose ${d.renewAt?.toISOString().slice(0, 16)}Z)`,
    );
  });

  test("reason shows whole-day windows as dates", async () => {
    const ari = fakeAri([
      {
        start: new Date("2026-12-01T00:00:00Z"),
        end: new Date("2026-12-03T00:00:00Z"),
        retryAfterMs: null,
      },
    ]);
    const d = await decide(input({ ari: ari.fn, random: () => 0.5 }));
    assert.equal(d.reason, "ARI window 2026-12-01..2026-12-03 (chose 2026-12-02T00:00Z)");
  });

  test("chosen moment before the next run (but in the future) -> due now", async () => {
    const ari = fakeAri([win(2 * HOUR, 20 * HOUR)]);
    const early = await decide(input({ ari: ari.fn, random: () => 0.1 })); // +3.8 h < +12 h
    assert.equal(early.due, true);
    const late = await decide(input({ ari: fakeAri([win(2 * HOUR, 20 * HOUR)]).fn, random: () => 0.9 })); // +18.2 h
    assert.equal(late.due, false);
  });

  test("chosen is kept while the window is unchanged and re-picked when it moves", async () => {
    let r = 0.1;
    const random = () => r;
    const first = await decide(input({ ari: fakeAri([win(5 * DAY, 7 * DAY)]).fn, random }));
    const chosen = first.state.ari?.chosen;
    assert.ok(chosen);
    // Same window fetched again later (cache expired), different random: same choice.
    r = 0.9;
    const later = new Date(NOW.getTime() + 7 * HOUR);
    const second = await decide(
      input({ ari: fakeAri([win(5 * DAY, 7 * DAY)]).fn, random, state: first.state, now: later }),
    );
    assert.equal(second.state.ari?.chosen, chosen);
    assert.equal(second.state.ari?.checkedAt, later.toISOString());
    // The CA moves the window: a new pick.
    const third = await decide(
      input({
        ari: fakeAri([win(1 * DAY, 3 * DAY)]).fn,
        random,
        state: second.state,
        now: new Date(later.getTime() + 7 * HOUR),
      }),
    );
    assert.notEqual(third.state.ari?.chosen, chosen);
    assert.equal(third.state.ari?.chosen, new Date(NOW.getTime() + 1 * DAY + 0.9 * 2 * DAY).toISOString());
  });

  test("Retry-After is honoured: no second fetch before nextCheck, one after it", async () => {
    const ari = fakeAri([win(5 * DAY, 7 * DAY, { retryAfterMs: 3 * HOUR })]);
    const a = await decide(input({ ari: ari.fn }));
    assert.equal(a.state.ari?.nextCheck, new Date(NOW.getTime() + 3 * HOUR).toISOString());
    const b = await decide(input({ ari: ari.fn, state: a.state, now: new Date(NOW.getTime() + 2 * HOUR) }));
    assert.equal(ari.calls.length, 1, "no request before nextCheck");
    assert.equal(b.source, "ari");
    assert.equal(b.state.ari?.chosen, a.state.ari?.chosen);
    await decide(input({ ari: ari.fn, state: b.state, now: new Date(NOW.getTime() + 3 * HOUR + 1) }));
    assert.equal(ari.calls.length, 2, "asked again once nextCheck passed");
  });

  test("Retry-After is clamped to 1 min .. 1 day; 6 h without one", async () => {
    const next = async (retryAfterMs: number | null) =>
      Date.parse(
        (await decide(input({ ari: fakeAri([win(5 * DAY, 7 * DAY, { retryAfterMs })]).fn }))).state.ari
          ?.nextCheck ?? "",
      ) - NOW.getTime();
    assert.equal(await next(0), MIN);
    assert.equal(await next(5_000), MIN);
    assert.equal(await next(30 * DAY), DAY);
    assert.equal(await next(2 * HOUR), 2 * HOUR);
    assert.equal(await next(null), 6 * HOUR);
  });

  test("a cache for another certificate (renewed since) is not used", async () => {
    const ari = fakeAri([win(5 * DAY, 7 * DAY)]);
    const state: RenewalState = {
      ...emptyState(),
      ari: {
        certId: "other.cert",
        checkedAt: NOW.toISOString(),
        nextCheck: new Date(NOW.getTime() + DAY).toISOString(),
        windowStart: new Date(NOW.getTime() - 2 * DAY).toISOString(),
        windowEnd: new Date(NOW.getTime() - DAY).toISOString(),
        chosen: new Date(NOW.getTime() - 1.5 * DAY).toISOString(),
      },
    };
    const d = await decide(input({ ari: ari.fn, state }));
    assert.equal(ari.calls.length, 1);
    assert.equal(d.due, false);
    assert.equal(d.state.ari?.certId, RFC_CERT_ID);
  });

  test("explanationURL is logged when newly seen, not again", async () => {
    const { log, lines } = capture();
    const w = win(5 * DAY, 7 * DAY, { explanationURL: "https://ca.example/incident/42" });
    const a = await decide(input({ ari: fakeAri([w]).fn, logger: log }));
    assert.equal(a.explanationURL, "https://ca.example/incident/42");
    assert.equal(lines.info.length, 1);
    assert.match(lines.info[0] ?? "", /a\.example.*https:\/\/ca\.example\/incident\/42/);
    const later = new Date(NOW.getTime() + 7 * HOUR);
    const b = await decide(input({ ari: fakeAri([w]).fn, logger: log, state: a.state, now: later }));
    assert.equal(b.explanationURL, "https://ca.example/incident/42");
    assert.equal(lines.info.length, 1);
  });

  test("CA without renewalInfo (ari answers null) -> fallback, asked again after a day", async () => {
    const ari = fakeAri([null]);
    const d = await decide(input({ ari: ari.fn }));
    assert.equal(d.source, "fallback");
    assert.equal(d.state.ari?.nextCheck, new Date(NOW.getTime() + DAY).toISOString());
    await decide(input({ ari: ari.fn, state: d.state, now: new Date(NOW.getTime() + 12 * HOUR) }));
    assert.equal(ari.calls.length, 1);
  });

  test("no ARI at the CA (ari = null) or no AKI -> fallback, no replaces", async () => {
    const a = await decide(input({ ari: null }));
    assert.equal(a.source, "fallback");
    assert.equal(a.replaces, undefined);
    const ari = fakeAri([win(-2 * DAY, -DAY)]);
    const b = await decide(input({ ari: ari.fn, cert: cert(fresh90.notBefore, 90 * DAY, null) }));
    assert.equal(b.source, "fallback");
    assert.equal(b.replaces, undefined);
    assert.equal(ari.calls.length, 0);
  });
});

describe("decide: broken ARI never blocks renewal", () => {
  const broken: Array<[string, Error]> = [
    ["missing window", new AriAnswerError("renewal info is unusable: no suggestedWindow")],
    ["end <= start", new AriAnswerError("renewal info is unusable: suggestedWindow ends before it starts")],
    [
      "bad dates",
      new AriAnswerError("renewal info is unusable: suggestedWindow.start is not an RFC 3339 date"),
    ],
    ["invalid JSON", new Error("the CA sent invalid JSON from https://ca/renewal-info/x: {oops")],
  ];
  for (const [what, err] of broken) {
    test(`${what} -> fallback, error recorded, asked again in 6 h, never throws`, async () => {
      const { log, lines } = capture();
      const d = await decide(input({ ari: fakeAri([err]).fn, logger: log }));
      assert.equal(d.source, "fallback");
      assert.equal(d.due, false);
      assert.equal(d.replaces, RFC_CERT_ID, "replaces still sent: the CA has ARI");
      assert.equal(d.state.ari?.error, err.message);
      assert.equal(d.state.ari?.nextCheck, new Date(NOW.getTime() + 6 * HOUR).toISOString());
      assert.match(d.reason, /1\/3 of lifetime left/);
      assert.match(d.reason, /ARI unusable/);
      assert.equal(lines.warn.length, 1);
    });
  }

  test("HTTP 500 -> fallback, nextCheck backs off (1 min, 10 min, ...), and it is due by lifetime", async () => {
    const problem = new AcmeProblem({
      type: "urn:ietf:params:acme:error:serverInternal",
      detail: "oops",
      status: 500,
      url: "https://ca/renewal-info/x",
    });
    const old = cert(new Date(NOW.getTime() - 70 * DAY), 90 * DAY); // 20 days left < 30
    const ari = fakeAri([problem]);
    const a = await decide(input({ ari: ari.fn, cert: old, random: () => 0 }));
    assert.equal(a.due, true);
    assert.equal(a.source, "fallback");
    assert.equal(a.state.ari?.errors, 1);
    assert.equal(a.state.ari?.nextCheck, new Date(NOW.getTime() + MIN).toISOString());
    const t2 = new Date(NOW.getTime() + 2 * MIN);
    const b = await decide(input({ ari: ari.fn, cert: old, state: a.state, now: t2, random: () => 0 }));
    assert.equal(b.state.ari?.errors, 2);
    assert.equal(b.state.ari?.nextCheck, new Date(t2.getTime() + 10 * MIN).toISOString());
    // While the error is cached, no request and still the fallback.
    const c = await decide(
      input({ ari: ari.fn, cert: old, state: b.state, now: new Date(t2.getTime() + MIN) }),
    );
    assert.equal(ari.calls.length, 2);
    assert.equal(c.source, "fallback");
  });

  test("a good answer after errors clears the error and keeps an unchanged choice", async () => {
    const w = win(5 * DAY, 7 * DAY);
    const a = await decide(input({ ari: fakeAri([w]).fn, random: () => 0.3 }));
    const t2 = new Date(NOW.getTime() + 7 * HOUR);
    const b = await decide(input({ ari: fakeAri([new AriAnswerError("x")]).fn, state: a.state, now: t2 }));
    assert.equal(b.source, "fallback");
    const t3 = new Date(t2.getTime() + 7 * HOUR);
    const c = await decide(input({ ari: fakeAri([w]).fn, state: b.state, now: t3, random: () => 0.9 }));
    assert.equal(c.source, "ari");
    assert.equal(c.state.ari?.error, undefined);
    assert.equal(c.state.ari?.errors, undefined);
    assert.equal(c.state.ari?.chosen, a.state.ari?.chosen);
  });
});

describe("decide: fallback, renewDays, expired, forced, backoff", () => {
  test("1/3 of a 90-day lifetime: due from day 60, not a millisecond before", async () => {
    const nb = new Date(NOW.getTime() - 60 * DAY);
    const at = await decide(input({ cert: cert(nb, 90 * DAY) }));
    assert.equal(at.due, true);
    assert.equal(at.reason, "1/3 of lifetime left");
    assert.equal(at.renewAt?.toISOString(), NOW.toISOString());
    const before = await decide(input({ cert: cert(new Date(nb.getTime() + 1), 90 * DAY) }));
    assert.equal(before.due, false);
    assert.equal(before.source, "fallback");
    assert.match(before.reason, /^1\/3 of lifetime left at /);
  });

  test("1/2 for lifetimes under 10 days (6-day shortlived), 1/3 at exactly 10 days", async () => {
    const six = await decide(input({ cert: cert(new Date(NOW.getTime() - 3 * DAY), 6 * DAY) }));
    assert.equal(six.due, true);
    assert.match(six.reason, /^1\/2 of lifetime left/);
    const sixEarly = await decide(input({ cert: cert(new Date(NOW.getTime() - 3 * DAY + 1), 6 * DAY) }));
    assert.equal(sixEarly.due, false);
    const ten = await decide(input({ cert: cert(new Date(NOW.getTime() - 5 * DAY), 10 * DAY) }));
    assert.equal(ten.due, false, "10 days is not under 10 days: 1/3 rule, due at day 6.67");
    assert.match(ten.reason, /^1\/3/);
  });

  test("renewDays overrides ARI and the fallback", async () => {
    const ari = fakeAri([win(-2 * DAY, -DAY)]);
    const c = cert(new Date(NOW.getTime() - 50 * DAY), 90 * DAY); // 40 days left
    const notYet = await decide(input({ cfg: { ...cfg, renewDays: 30 }, cert: c, ari: ari.fn }));
    assert.equal(notYet.due, false);
    assert.equal(notYet.source, "renew-days");
    assert.equal(notYet.reason, "renew 30 days before expiry (renewDays)");
    assert.equal(notYet.renewAt?.toISOString(), new Date(c.notAfter.getTime() - 30 * DAY).toISOString());
    assert.equal(notYet.replaces, RFC_CERT_ID);
    assert.equal(ari.calls.length, 0);
    const now = await decide(input({ cfg: { ...cfg, renewDays: 40 }, cert: c }));
    assert.equal(now.due, true);
  });

  test("expired -> due", async () => {
    const d = await decide(input({ cert: cert(new Date(NOW.getTime() - 91 * DAY), 90 * DAY) }));
    assert.equal(d.due, true);
    assert.equal(d.source, "expired");
    assert.match(d.reason, /^expired/);
  });

  test("force -> due whatever else holds, without asking ARI", async () => {
    const ari = fakeAri([win(50 * DAY, 60 * DAY)]);
    const state = { ...emptyState(), failures: 3, nextAttempt: new Date(NOW.getTime() + HOUR).toISOString() };
    const d = await decide(input({ force: true, ari: ari.fn, state }));
    assert.deepEqual([d.due, d.source, d.reason, d.replaces], [true, "forced", "forced", RFC_CERT_ID]);
    assert.equal(ari.calls.length, 0);
  });

  test("pending backoff -> not due, no ARI request, reason names failures and time", async () => {
    const ari = fakeAri([win(-2 * DAY, -DAY)]);
    const until = new Date(NOW.getTime() + 100 * MIN);
    const state: RenewalState = {
      ...emptyState(),
      failures: 2,
      lastError: "the CA refused the request (rateLimited, HTTP 429): slow down",
      nextAttempt: until.toISOString(),
    };
    const d = await decide(input({ ari: ari.fn, state }));
    assert.equal(d.due, false);
    assert.equal(d.source, "backoff");
    assert.equal(d.renewAt?.toISOString(), until.toISOString());
    assert.match(d.reason, /^waiting after 2 failures until 2026-11-23T13:40Z \(last error: .*rateLimited/);
    assert.equal(ari.calls.length, 0);
  });

  test("backoff passed -> decided normally", async () => {
    const state = { ...emptyState(), failures: 4, nextAttempt: new Date(NOW.getTime() - 1).toISOString() };
    const d = await decide(input({ state, ari: fakeAri([win(-2 * DAY, -DAY)]).fn }));
    assert.equal(d.due, true);
    assert.equal(d.source, "ari");
  });

  test("backoff never waits past 24 h before expiry; an expired certificate is retried at once", async () => {
    const c = cert(new Date(NOW.getTime() - 88 * DAY), 90 * DAY); // 2 days left
    const state = {
      ...emptyState(),
      failures: 6,
      nextAttempt: new Date(NOW.getTime() + 7 * DAY).toISOString(),
    };
    const d = await decide(input({ cert: c, state }));
    assert.equal(d.source, "backoff");
    assert.equal(d.renewAt?.toISOString(), new Date(c.notAfter.getTime() - DAY).toISOString());
    const last = await decide(input({ cert: c, state, now: new Date(c.notAfter.getTime() - DAY) }));
    assert.equal(last.due, true);
    assert.equal(last.source, "fallback");
    const gone = await decide(input({ cert: c, state, now: new Date(c.notAfter.getTime() + 1) }));
    assert.equal(gone.due, true);
    assert.equal(gone.source, "expired");
  });

  test("decide does not mutate the state it is given", async () => {
    const state: RenewalState = {
      ...emptyState(),
      ari: {
        certId: RFC_CERT_ID,
        checkedAt: NOW.toISOString(),
        nextCheck: new Date(NOW.getTime() - 1).toISOString(),
      },
    };
    const copy = structuredClone(state);
    await decide(input({ state, ari: fakeAri([win(DAY, 2 * DAY)]).fn }));
    assert.deepEqual(state, copy);
  });
});
