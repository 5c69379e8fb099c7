/**
 * The lifecycle step's records in state.json, offline: a real store, the real "command" deploy
 * target, and an obtain that fails before contacting anybody (its certificate lock is held).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AcmeProblem } from "../../../src/acme/problem";
import { parseCertificate } from "../../../src/crypto/x509";
import { obtainAndDeploy, recordFailure, redeploy } from "../../../src/flow/lifecycle";
import { CertStore } from "../../../src/store/certs";
import { emptyState, type RenewalState, readState, statePath, writeState } from "../../../src/store/state";
import { silentLogger } from "../../../src/util/log";
import { selfSigned } from "../../helpers/mail-services";
import { renewalConfig } from "../../helpers/renewal";

let root = "";
before(() => {
  root = mkdtempSync(join(tmpdir(), "wile-lifecycle-"));
});
after(() => rmSync(root, { recursive: true, force: true }));

let homes = 0;
/** A home with `name` installed (self-signed) and its renewal.json; the certificate's serial. */
async function homeWith(name: string): Promise<{ home: string; serial: string }> {
  const home = join(root, `home-${++homes}`);
  const { keyPem, certPem } = selfSigned(root, `${name}-${homes}`);
  const store = new CertStore(home);
  await store.install(name, {
    privkeyPem: keyPem,
    certPem,
    chainPem: certPem,
    fullchainPem: certPem + certPem,
  });
  await store.writeRenewal(name, renewalConfig(name));
  return { home, serial: parseCertificate(certPem).serialHex };
}

const NAME = "life.example";
const deployCmd = (command: string) =>
  renewalConfig(NAME, [{ kind: "command", command } as { kind: string }]);
const at = (iso: string) => ({ now: new Date(iso), logger: silentLogger, verifyWaitMs: 0 });
/** Earlier renewal failures and an ARI cache, which a deploy must leave alone. */
const renewalFailures: RenewalState = {
  version: 1,
  failures: 2,
  lastError: "rate limited",
  nextAttempt: "2030-01-01T00:00:00.000Z",
  ari: { certId: "a.b", checkedAt: "2026-01-01T00:00:00.000Z", nextCheck: "2026-01-02T00:00:00.000Z" },
};

describe("redeploy", () => {
  test("a failed deploy is pending with the serial and error; since stays while it fails; success clears it", async () => {
    const { home, serial } = await homeWith(NAME);
    await writeState(home, NAME, renewalFailures);

    const first = await redeploy(deployCmd("echo no route >&2; exit 1"), {
      home,
      ...at("2026-03-01T00:00:00Z"),
    });
    assert.equal(first.outcome.status, "failed");
    assert.match(
      first.outcome.reason,
      new RegExp(`^the deploy of serial ${serial} failed: deploy to command`),
    );
    assert.match(first.outcome.reason, /no route/);
    assert.ok(first.outcome.hint, "the deploy's hint");
    const pending = (await readState(home, NAME)).deployPending;
    assert.equal(pending?.serial, serial);
    assert.equal(pending?.since, "2026-03-01T00:00:00.000Z");
    assert.match(pending?.error ?? "", /exit 1/);

    const again = await redeploy(deployCmd("exit 2"), { home, ...at("2026-03-02T00:00:00Z") });
    assert.match(again.outcome.reason, new RegExp(`^the deploy of serial ${serial} failed again: `));
    const still = await readState(home, NAME);
    assert.equal(still.deployPending?.since, "2026-03-01T00:00:00.000Z", "failing since the first time");
    assert.match(still.deployPending?.error ?? "", /exit 2/, "the latest error");

    const ok = await redeploy(deployCmd("true"), { home, ...at("2026-03-03T00:00:00Z") });
    assert.deepEqual(ok.outcome, {
      name: NAME,
      status: "deployed",
      reason: "deployed the certificate whose deploy had failed",
    });
    assert.equal(ok.error, undefined);
    assert.deepEqual(await readState(home, NAME), renewalFailures, "only deployPending is gone");
  });

  test("a deploy is noted as pending while it runs (a killed run is deployed again), and not after", async () => {
    const { home, serial } = await homeWith(NAME);
    const seen = join(root, `seen-${++homes}`);
    const r = await redeploy(deployCmd(`cp ${statePath(home, NAME)} ${seen}`), {
      home,
      ...at("2026-03-01T00:00:00Z"),
    });
    assert.deepEqual(r.outcome, { name: NAME, status: "deployed", reason: `deployed serial ${serial}` });
    const during = JSON.parse(readFileSync(seen, "utf8"));
    assert.equal(during.deployPending.serial, serial);
    assert.match(during.deployPending.error, /not deployed yet/);
    assert.deepEqual(await readState(home, NAME), emptyState());
  });

  test("no certificate in place: the deploy fails and nothing is recorded", async () => {
    const home = join(root, `home-${++homes}`);
    await new CertStore(home).writeRenewal(NAME, renewalConfig(NAME));
    const r = await redeploy(deployCmd("true"), { home, ...at("2026-03-01T00:00:00Z") });
    assert.equal(r.outcome.status, "failed");
    assert.match(r.outcome.reason, /has no certificate to deploy yet/);
    assert.equal(existsSync(statePath(home, NAME)), false);
  });
});

describe("obtainAndDeploy when obtaining fails", () => {
  /** A CA that refuses connections: issueFromConfig fails at once. */
  const obtain = (home: string) =>
    obtainAndDeploy(
      { ...renewalConfig(NAME), caBundle: "/nonexistent/ca.pem" },
      { home, reason: "forced", ...at("2026-03-01T00:00:00Z") },
    );

  test("a certificate of this home: one more failure, the error, a backoff; the pending deploy stays", async () => {
    const { home } = await homeWith(NAME);
    const pending = { serial: "0A", error: "old deploy error", since: "2026-02-01T00:00:00.000Z" };
    await writeState(home, NAME, { ...renewalFailures, deployPending: pending });
    const r = await obtain(home);
    assert.equal(r.issued, undefined);
    assert.equal(r.outcome.status, "failed");
    assert.match(r.outcome.reason, /\/nonexistent\/ca\.pem/);
    const s = await readState(home, NAME);
    assert.equal(s.failures, 3);
    assert.equal(s.lastAttempt, "2026-03-01T00:00:00.000Z");
    assert.equal(s.lastError, r.outcome.reason);
    assert.equal(s.nextAttempt, r.outcome.renewAt);
    assert.ok(
      Date.parse(s.nextAttempt ?? "") >= Date.parse("2026-03-01T01:40:00Z"),
      "100 minutes after the third failure",
    );
    assert.deepEqual(s.deployPending, pending);
    assert.deepEqual(s.ari, renewalFailures.ari);
  });

  test("a name this home does not have yet: nothing is recorded", async () => {
    const home = join(root, `home-${++homes}`);
    const r = await obtain(home);
    assert.equal(r.outcome.status, "failed");
    assert.ok(r.error instanceof Error);
    assert.equal(r.outcome.renewAt, undefined);
    assert.equal(existsSync(statePath(home, NAME)), false);
    assert.deepEqual(await new CertStore(home).names(), []);
  });
});

describe("recordFailure", () => {
  test("a CA's Retry-After past the backoff decides the next attempt", async () => {
    const { home } = await homeWith(NAME);
    const err = new AcmeProblem({
      type: "urn:ietf:params:acme:error:rateLimited",
      detail: "too many certificates",
      status: 429,
      retryAfterMs: 5 * 3_600_000,
      url: "https://ca.example/new-order",
    });
    const now = new Date("2026-03-01T00:00:00Z");
    const o = await recordFailure(home, NAME, await readState(home, NAME), err, now, silentLogger);
    assert.equal(o.renewAt, "2026-03-01T05:00:00.000Z");
    const s = await readState(home, NAME);
    assert.equal(s.failures, 1);
    assert.equal(s.nextAttempt, "2026-03-01T05:00:00.000Z");
    assert.match(s.lastError ?? "", /too many certificates/);
  });
});
