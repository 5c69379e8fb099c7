import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import type { ChallengeContext } from "../../../src/acme/solver";
import {
  Dns01Solver,
  dns01Record,
  dns01RecordName,
  dns01TxtValue,
  type PropagationCheck,
} from "../../../src/challenges/dns-01";
import type { DnsProvider, DnsRecord } from "../../../src/dns/provider";
import { WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";

const ctx = (value: string, token: string): ChallengeContext => ({
  identifier: { type: "dns", value },
  token,
  keyAuthorization: `${token}.THUMBPRINT_-0`,
});

/** The TXT value computed independently: SHA-256, standard base64, made url-safe, padding dropped. */
function expectedValue(keyAuthorization: string): string {
  const b64 = createHash("sha256").update(Buffer.from(keyAuthorization, "utf8")).digest("base64");
  return b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

describe("RFC 8555 8.4: the dns-01 record", () => {
  test("the TXT value is base64url(SHA-256(key authorization)) without padding", () => {
    // SHA-256 of the empty string, a vector anyone can check: e3b0c442...b855.
    assert.equal(dns01TxtValue(""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
    // Tokens whose digests hold "+" and "/" in standard base64 are found among these.
    const kas = Array.from(
      { length: 50 },
      (_, i) => `tok${i}-evaGxfADs6pSRb2LAv9IZf17Dt3j.nP1qzpXGymHBrUEepNY9H`,
    );
    for (const ka of kas) {
      const v = dns01TxtValue(ka);
      assert.equal(v, expectedValue(ka));
      assert.match(v, /^[A-Za-z0-9_-]{43}$/);
    }
    assert.ok(kas.some((ka) => /[+/]/.test(createHash("sha256").update(ka).digest("base64"))));
  });

  test("the record name is _acme-challenge.<name>; a wildcard uses its base name", () => {
    assert.equal(dns01RecordName("example.com"), "_acme-challenge.example.com");
    assert.equal(dns01RecordName("*.example.com"), "_acme-challenge.example.com");
    assert.equal(dns01RecordName("www.example.com."), "_acme-challenge.www.example.com");
    const r = dns01Record(ctx("*.example.com", "tok"));
    assert.deepEqual(r, {
      fqdn: "_acme-challenge.example.com",
      value: expectedValue("tok.THUMBPRINT_-0"),
      identifier: "example.com",
      token: "tok",
    });
  });
});

/** A provider that keeps a zone (name -> values) and records each call. */
function fakeProvider(opts: { failPresentFor?: string; failCleanup?: boolean } = {}) {
  const events: string[] = [];
  const zone = new Map<string, string[]>();
  const provider: DnsProvider = {
    describe: () => "fake",
    async present(r) {
      events.push(`present ${r.fqdn} ${r.value}`);
      if (r.identifier === opts.failPresentFor) throw new WileError(`zone refused ${r.fqdn}`);
      zone.set(r.fqdn, [...(zone.get(r.fqdn) ?? []), r.value]);
    },
    async cleanup(r) {
      events.push(`cleanup ${r.fqdn} ${r.value}`);
      if (opts.failCleanup) throw new WileError("zone unreachable");
      const left = (zone.get(r.fqdn) ?? []).filter((v) => v !== r.value);
      if (left.length > 0) zone.set(r.fqdn, left);
      else zone.delete(r.fqdn);
    },
  };
  return { provider, events, zone };
}

/**
 * What src/acme/obtain.ts does with a solver: present all, preflight each, (answer the CA), and
 * clean up every presented challenge in any case.
 */
async function drive(solver: Dns01Solver, ctxs: ChallengeContext[], answer: () => void = () => {}) {
  const presented: ChallengeContext[] = [];
  try {
    for (const c of ctxs) {
      await solver.present(c);
      presented.push(c);
    }
    for (const c of ctxs) await solver.preflight(c);
    answer();
  } finally {
    for (const c of presented) await solver.cleanup(c);
  }
}

describe("Dns01Solver", () => {
  const apex = ctx("example.com", "tokA");
  const wild = ctx("example.com", "tokW"); // the wildcard's authorization: identifier without "*."
  const other = ctx("mail.example.org", "tokM");
  const fqdn = "_acme-challenge.example.com";

  test("presents every record, checks them all once, then the flow answers; removes exactly what it added", async () => {
    const { provider, events, zone } = fakeProvider();
    zone.set(fqdn, ["operator's own value"]);
    const checks: string[][] = [];
    const check: PropagationCheck = async (records) => {
      events.push("check");
      checks.push(records.map((r) => `${r.fqdn} ${r.value}`));
      // Both values of the shared name are in place at once when the check runs.
      assert.deepEqual(zone.get(fqdn), [
        "operator's own value",
        dns01TxtValue(apex.keyAuthorization),
        dns01TxtValue(wild.keyAuthorization),
      ]);
    };
    const solver = new Dns01Solver({ provider, check, logger: silentLogger });
    await drive(solver, [apex, wild, other], () => events.push("answer"));
    const v = (c: ChallengeContext) => dns01TxtValue(c.keyAuthorization);
    assert.deepEqual(events, [
      `present ${fqdn} ${v(apex)}`,
      `present ${fqdn} ${v(wild)}`,
      `present _acme-challenge.mail.example.org ${v(other)}`,
      "check",
      "answer",
      `cleanup ${fqdn} ${v(apex)}`,
      `cleanup ${fqdn} ${v(wild)}`,
      `cleanup _acme-challenge.mail.example.org ${v(other)}`,
    ]);
    assert.equal(checks.length, 1, "one check for the whole order");
    assert.equal(checks[0]?.length, 3);
    assert.deepEqual([...zone.entries()], [[fqdn, ["operator's own value"]]], "only what wile added is gone");
    assert.deepEqual(solver.records(), []);
  });

  test("a failed check stops before the CA is answered, and every record is removed", async () => {
    const { provider, events, zone } = fakeProvider();
    const check: PropagationCheck = async () => {
      throw new WileError("ns2.example.com does not serve the record yet");
    };
    const solver = new Dns01Solver({ provider, check, logger: silentLogger });
    await assert.rejects(
      drive(solver, [apex, wild], () => events.push("answer")),
      /ns2\.example\.com does not serve/,
    );
    assert.ok(!events.includes("answer"));
    assert.equal(events.filter((e) => e.startsWith("cleanup")).length, 2);
    assert.equal(zone.size, 0);
  });

  test("a present that fails: the records added before it are removed, the failed one is not touched", async () => {
    const { provider, events, zone } = fakeProvider({ failPresentFor: "mail.example.org" });
    let checked = false;
    const solver = new Dns01Solver({
      provider,
      check: async () => {
        checked = true;
      },
      logger: silentLogger,
    });
    await assert.rejects(
      drive(solver, [apex, other, wild]),
      /zone refused _acme-challenge\.mail\.example\.org/,
    );
    assert.equal(checked, false);
    const v = (c: ChallengeContext) => dns01TxtValue(c.keyAuthorization);
    assert.deepEqual(events, [
      `present ${fqdn} ${v(apex)}`,
      `present _acme-challenge.mail.example.org ${v(other)}`,
      `cleanup ${fqdn} ${v(apex)}`,
    ]);
    assert.equal(zone.size, 0);
  });

  test("cleanup twice (the interrupt handler and the flow) removes once; unknown challenges are ignored", async () => {
    const { provider, events } = fakeProvider();
    const solver = new Dns01Solver({ provider, check: async () => {}, logger: silentLogger });
    await solver.present(apex);
    await Promise.all([solver.cleanup(apex), solver.cleanup(apex)]);
    await solver.cleanup(other);
    assert.deepEqual(
      events.filter((e) => e.startsWith("cleanup")),
      [`cleanup ${fqdn} ${dns01TxtValue(apex.keyAuthorization)}`],
    );
  });

  test("a provider's cleanup error reaches the caller (obtain.ts logs it as a warning)", async () => {
    const { provider } = fakeProvider({ failCleanup: true });
    const solver = new Dns01Solver({ provider, check: async () => {}, logger: silentLogger });
    await solver.present(apex);
    await assert.rejects(solver.cleanup(apex), /zone unreachable/);
    // Not retried by a second cleanup: it was asked once; the error told the operator.
    await solver.cleanup(apex);
  });

  test("records presented after a check are checked by the next preflight", async () => {
    const { provider } = fakeProvider();
    const batches: DnsRecord[][] = [];
    const solver = new Dns01Solver({
      provider,
      check: async (records) => {
        batches.push([...records]);
      },
      logger: silentLogger,
    });
    await solver.present(apex);
    await solver.preflight(apex);
    await solver.present(other);
    await solver.preflight(apex);
    await solver.preflight(other);
    assert.deepEqual(
      batches.map((b) => b.map((r) => r.identifier)),
      [["example.com"], ["mail.example.org"]],
    );
  });

  test("locate: the record is written where it says (once per name), checked and removed there", async () => {
    const { provider, events, zone } = fakeProvider();
    const located: string[] = [];
    const checked: string[] = [];
    const solver = new Dns01Solver({
      provider,
      check: async (records) => {
        checked.push(...records.map((r) => `${r.fqdn} ${r.identifier}`));
      },
      locate: async (r) => {
        located.push(r.fqdn);
        return `_acme-challenge.${r.identifier.replace(/\..*/, "")}.alias.test`;
      },
      logger: silentLogger,
    });
    await drive(solver, [apex, wild, other]);
    assert.deepEqual(
      located,
      [fqdn, "_acme-challenge.mail.example.org"],
      "the name and its wildcard: one lookup",
    );
    assert.deepEqual(checked, [
      "_acme-challenge.example.alias.test example.com",
      "_acme-challenge.example.alias.test example.com",
      "_acme-challenge.mail.alias.test mail.example.org",
    ]);
    assert.ok(
      events.every((e) => / _acme-challenge\.(example|mail)\.alias\.test /.test(e)),
      events.join("\n"),
    );
    assert.equal(events.filter((e) => e.startsWith("cleanup")).length, 3);
    assert.equal(zone.size, 0);
  });

  test("locate failing: nothing is presented", async () => {
    const { provider, events } = fakeProvider();
    const solver = new Dns01Solver({
      provider,
      check: async () => {},
      locate: async () => {
        throw new WileError("the CNAMEs form a loop");
      },
      logger: silentLogger,
    });
    await assert.rejects(drive(solver, [apex]), /form a loop/);
    assert.deepEqual(events, []);
  });
});
