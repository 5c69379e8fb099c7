/**
 * End to end: one lifecycle (obtain -> deploy -> record state) whichever command runs it. Each
 * scenario is prepared the same way for two or three certificates in one home, then driven once
 * through `wile issue`, once through `wile renew` (the step `wile cron` runs for a due certificate)
 * and, for deploys, once through `wile deploy NAME`; state.json and `wile list --json` must then say
 * the same thing for each.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serialHex } from "../helpers/certs";
import { certFiles, issueArgs, snapshot } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, type RunResult, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;

before(async () => {
  // No authorization reuse: a re-issue with a broken webroot really meets a validation.
  env = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "0" } });
});

after(async () => {
  await env?.stop();
});

const newHome = () => join(tempDir("wile-e2e-lifecycle-"), "wile");
const wileIn = (home: string) => (args: string[]) => runWile(args, { home, timeoutMs: 60_000 });

function readState(home: string, name: string): Record<string, unknown> {
  const file = join(certFiles(home, name).dir, "state.json");
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {};
}

/** state.json with times reduced to "set", and the pending serial to whether it is cert.pem's. */
function shapeOfState(home: string, name: string) {
  const s = readState(home, name);
  const pending = s.deployPending as { serial: string; error: string; since: string } | undefined;
  return {
    failures: s.failures,
    lastError: s.lastError,
    nextAttempt: s.nextAttempt === undefined ? "unset" : "set",
    lastSuccess: s.lastSuccess === undefined ? "unset" : "set",
    ari: s.ari === undefined ? "unset" : "set",
    deployPending: pending && {
      ofCurrentCertificate: pending.serial === serialHex(certFiles(home, name).cert),
      error: pending.error,
    },
  };
}

/** The `wile list --json` row of name, without what differs by name or by certificate. */
async function listRow(home: string, name: string) {
  const r = await wileIn(home)(["list", "--json"]);
  assert.equal(r.code, 0, dump(r));
  const row = JSON.parse(r.stdout).certificates.find((c: { name: string }) => c.name === name);
  assert.ok(row, `${name} is not listed: ${r.stdout}`);
  return { status: row.status, lastError: row.lastError };
}

/** Every path gives the same state and list row; returns that one. */
async function sameEverywhere(home: string, names: string[]) {
  const states = names.map((n) => shapeOfState(home, n));
  const rows = await Promise.all(names.map((n) => listRow(home, n)));
  for (let i = 1; i < names.length; i++) {
    assert.deepEqual(states[i], states[0], `state.json of ${names[i]} against ${names[0]}`);
    assert.deepEqual(rows[i], rows[0], `wile list of ${names[i]} against ${names[0]}`);
  }
  return { state: states[0], row: rows[0] };
}

describe("one lifecycle for issue, renew, cron and deploy", () => {
  it("a successful issuance or renewal clears recorded failures, errors and the ARI cache", async () => {
    const home = newHome();
    const wile = wileIn(home);
    const names = ["clean-issue.example", "clean-renew.example"];
    const failing = {
      version: 1,
      failures: 3,
      lastAttempt: new Date(Date.now() - 60_000).toISOString(),
      lastError: "an old error",
      nextAttempt: new Date(Date.now() + 3_600_000).toISOString(),
      ari: {
        certId: "old.cert",
        checkedAt: new Date().toISOString(),
        nextCheck: new Date(Date.now() + 3_600_000).toISOString(),
      },
    };
    for (const name of names) {
      const r = await wile(issueArgs(env, [name]));
      assert.equal(r.code, 0, dump(r));
      writeFileSync(join(certFiles(home, name).dir, "state.json"), JSON.stringify(failing));
      assert.equal((await listRow(home, name)).status, "failing", "prepared as failing");
    }
    const steps: RunResult[] = [
      await wile(issueArgs(env, ["clean-issue.example"], ["--force"])),
      await wile(["renew", "clean-renew.example", "--force"]),
    ];
    for (const r of steps) assert.equal(r.code, 0, dump(r));
    const { state, row } = await sameEverywhere(home, names);
    assert.deepEqual(state, {
      failures: 0,
      lastError: undefined,
      nextAttempt: "unset",
      lastSuccess: "set",
      ari: "unset",
      deployPending: undefined,
    });
    assert.deepEqual(row, { status: "ok", lastError: undefined });
  });

  it("a failed deploy is recorded as pending, listed as failing, and retried by cron until it succeeds", async () => {
    const home = newHome();
    const wile = wileIn(home);
    const out = tempDir("wile-e2e-lifecycle-deploy-");
    const broken = join(out, "broken");
    // Fails while the flag file exists; else logs the serial it deployed, one file per certificate.
    const cmd = `test ! -e ${broken} && openssl x509 -noout -serial -in "$WILE_CERT_PATH" >> ${out}/$WILE_CERT_NAME.log`;
    const deployArgs = ["--deploy", "command", "--deploy-cmd", cmd];
    const names = ["pending-issue.example", "pending-renew.example", "pending-deploy.example"];
    for (const name of names) {
      const r = await wile(issueArgs(env, [name], deployArgs));
      assert.equal(r.code, 0, dump(r));
    }
    writeFileSync(broken, "");
    const steps: RunResult[] = [
      await wile(issueArgs(env, ["pending-issue.example"], ["--force", ...deployArgs])),
      await wile(["renew", "pending-renew.example", "--force"]),
      await wile(["deploy", "pending-deploy.example"]),
    ];
    for (const r of steps) {
      assert.equal(r.code, 1, dump(r));
      assert.match(r.stderr, /deploy to command .* failed/, dump(r));
    }
    const { state, row } = await sameEverywhere(home, names);
    assert.equal(state?.failures, 0, "a deploy failure is not a failed renewal");
    assert.equal(state?.deployPending?.ofCurrentCertificate, true, "the current certificate is pending");
    assert.match(state?.deployPending?.error ?? "", /deploy to command .* failed/);
    assert.equal(row?.status, "failing");
    assert.match(row?.lastError ?? "", /^deploy failed: deploy to command/);

    const serials = Object.fromEntries(names.map((n) => [n, serialHex(certFiles(home, n).cert)]));
    const deployed = (name: string) =>
      (
        readFileSync(join(out, `${name}.log`), "utf8")
          .trim()
          .split("\n")
          .pop() ?? ""
      ).replace(/^serial=/, "");

    // Still broken: cron deploys each again, fails, renews nothing.
    const still = await wile(["cron"]);
    assert.equal(still.code, 1, dump(still));
    for (const name of names) {
      assert.match(
        still.stderr,
        new RegExp(`${name.replace(/\./g, "\\.")}: the deploy of serial [0-9A-F]+ failed`),
      );
      assert.equal(serialHex(certFiles(home, name).cert), serials[name], `${name} is not renewed`);
    }
    assert.equal((await sameEverywhere(home, names)).row?.status, "failing");

    // Repaired: cron deploys the pending certificates and the state is clean again.
    rmSync(broken);
    const fixed = await wile(["cron"]);
    assert.equal(fixed.code, 0, dump(fixed));
    for (const name of names) {
      assert.equal(serialHex(certFiles(home, name).cert), serials[name], `${name} is not renewed`);
      assert.equal(deployed(name), serials[name], `${name}: the pending certificate was deployed`);
    }
    const clean = await sameEverywhere(home, names);
    assert.equal(clean.state?.deployPending, undefined);
    assert.deepEqual(clean.row, { status: "ok", lastError: undefined });
    const quiet = await wile(["cron"]);
    assert.equal(quiet.code, 0, dump(quiet));
    assert.equal(quiet.stderr, "", "nothing left to deploy");
  });

  it("a failed issuance or renewal of a certificate counts a failure and backs off; the pair stays", async () => {
    const home = newHome();
    const wile = wileIn(home);
    const names = ["obtainfail-issue.example", "obtainfail-renew.example"];
    for (const name of names) {
      const r = await wile(issueArgs(env, [name]));
      assert.equal(r.code, 0, dump(r));
    }
    const before = names.map((n) => snapshot(home, n));
    // A webroot nginx does not serve, and a name never validated before (so a challenge is due).
    const unserved = tempDir("wile-e2e-unserved-");
    const extra = (name: string) => `new-${Date.now().toString(36)}.${name}`;
    const viaIssue = await wile(
      issueArgs(env, ["obtainfail-issue.example", extra("obtainfail-issue.example")], ["--force"], unserved),
    );
    const renewal = certFiles(home, "obtainfail-renew.example").renewal;
    const cfg = JSON.parse(readFileSync(renewal, "utf8"));
    const more = extra("obtainfail-renew.example");
    cfg.identifiers.push({ type: "dns", value: more });
    cfg.challenge.webroots = { "obtainfail-renew.example": unserved, [more]: unserved };
    cfg.resolve.push(env.resolveArg(more));
    writeFileSync(renewal, JSON.stringify(cfg));
    const viaRenew = await wile(["renew", "obtainfail-renew.example", "--force"]);
    for (const r of [viaIssue, viaRenew]) {
      assert.equal(r.code, 1, dump(r));
      assert.match(r.stderr, /[Pp]reflight/, dump(r));
    }
    assert.deepEqual(
      names.map((n) => snapshot(home, n)),
      before,
      "certificates and keys untouched",
    );
    const shapes = names.map((n) => {
      const { lastError, ...rest } = shapeOfState(home, n);
      assert.match(String(lastError), /[Pp]reflight/, `${n}: lastError`);
      return rest;
    });
    assert.deepEqual(shapes[0], shapes[1]);
    assert.deepEqual(shapes[0], {
      failures: 1,
      nextAttempt: "set",
      lastSuccess: "set",
      ari: "unset",
      deployPending: undefined,
    });
    for (const n of names) assert.equal((await listRow(home, n)).status, "failing");
    // Backing off: cron does not try again at once, for either.
    const waiting = await wile(["cron"]);
    assert.equal(waiting.code, 0, dump(waiting));
    for (const n of names) assert.equal(readState(home, n).failures, 1);
  });

  it("a failed first issuance of a new name records nothing: it is not listed", async () => {
    const home = newHome();
    const wile = wileIn(home);
    const r = await wile(issueArgs(env, ["never.example"], [], tempDir("wile-e2e-unserved-")));
    assert.equal(r.code, 1, dump(r));
    assert.equal(existsSync(join(certFiles(home, "never.example").dir, "state.json")), false);
    const list = await wile(["list", "--json"]);
    assert.deepEqual(JSON.parse(list.stdout).certificates, []);
  });
});
