/**
 * End to end: renewal by `wile cron` and `wile renew` against Pebble issuing short-lived
 * certificates, so that the fallback rule (half the lifetime left, under 10 days) makes them due.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { forgetAuthorizations } from "../helpers/authz";
import { keyMatchesCert, keyTypeOf, sanNames, serialHex } from "../helpers/certs";
import { certFiles, issueArgs, snapshot } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

const VALIDITY_S = 8;
let env: TestEnv;
let home: string;

before(async () => {
  env = await startTestEnv({ validityPeriod: VALIDITY_S, env: { PEBBLE_AUTHZREUSE: "0" } });
  home = join(tempDir("wile-e2e-renew-"), "wile");
});

after(async () => {
  await env?.stop();
});

const wile = (args: string[]) => runWile(args, { home, timeoutMs: 60_000 });
const versions = (name: string) =>
  readdirSync(join(home, "certs", name, "archive")).filter((d) => !d.startsWith("."));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until half of the certificate's lifetime has passed, so the fallback rule makes it due. */
async function untilDue(name: string) {
  const text = readFileSync(certFiles(home, name).cert, "utf8");
  const { X509Certificate } = await import("node:crypto");
  const c = new X509Certificate(text);
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  const dueAt = to - (to - from) / 2 + 1000;
  if (dueAt > Date.now()) await sleep(dueAt - Date.now());
}

describe("renewal", () => {
  it("cron renews nothing while no certificate is due, silently", async () => {
    const r1 = await wile(issueArgs(env, ["quiet.example"]));
    assert.equal(r1.code, 0, dump(r1));
    const r = await wile(["cron"]);
    assert.equal(r.code, 0, dump(r));
    assert.equal(r.stdout, "", "nothing on stdout when all is well");
    assert.equal(r.stderr, "", "nothing on stderr either: cron would mail it");
    assert.equal(versions("quiet.example").length, 1);
    const single = await wile(["renew", "quiet.example"]);
    assert.equal(single.code, 3, dump(single));
    assert.match(single.stderr, /quiet\.example: not renewed/);
  });

  it("cron renews a due certificate replaying renewal.json, keeping the old version", async () => {
    const name = "replay.example";
    const r1 = await wile(issueArgs(env, [name, "www.replay.example"], ["--key-type", "rsa-2048"]));
    assert.equal(r1.code, 0, dump(r1));
    const before = snapshot(home, name);
    const oldSerial = serialHex(certFiles(home, name).cert);
    await untilDue(name);
    const r = await wile(["cron"]);
    assert.equal(r.code, 0, dump(r));
    assert.equal(r.stdout, "");
    const f = certFiles(home, name);
    assert.notEqual(serialHex(f.cert), oldSerial, "a new certificate at the stable path");
    assert.notDeepEqual(snapshot(home, name), before);
    assert.deepEqual(sanNames(f.cert), ["replay.example", "www.replay.example"], "same names");
    assert.equal(keyTypeOf(f.privkey), "rsa-2048", "same key type as at issue time");
    assert.ok(keyMatchesCert(f.privkey, f.cert).match);
    assert.ok(versions(name).length >= 2, "the earlier version stays in archive/");
    const renewal = JSON.parse(readFileSync(f.renewal, "utf8"));
    assert.equal(renewal.keyType, "rsa-2048");
  });

  it("two cron runs started together renew a due certificate exactly once", async () => {
    const name = "race.example";
    const r1 = await wile(issueArgs(env, [name]));
    assert.equal(r1.code, 0, dump(r1));
    await untilDue(name);
    const [a, b] = await Promise.all([wile(["cron"]), wile(["cron"])]);
    assert.equal(a.code, 0, dump(a));
    assert.equal(b.code, 0, dump(b));
    assert.equal(versions(name).length, 2, "exactly one renewal");
  });

  it("--reuse-key keeps the key across renewals; renew --force renews at once", async () => {
    const name = "reuse.example";
    const r1 = await wile(issueArgs(env, [name], ["--reuse-key"]));
    assert.equal(r1.code, 0, dump(r1));
    const key = readFileSync(certFiles(home, name).privkey, "utf8");
    const serial = serialHex(certFiles(home, name).cert);
    const r = await wile(["renew", name, "--force"]);
    assert.equal(r.code, 0, dump(r));
    assert.notEqual(serialHex(certFiles(home, name).cert), serial);
    assert.equal(readFileSync(certFiles(home, name).privkey, "utf8"), key, "same key");
  });

  it("a renewal whose deploy fails is reported, and the next run deploys it again without renewing", async () => {
    const name = "deployfail.example";
    const flag = join(tempDir("wile-e2e-deployflag-"), "broken");
    const log = `${flag}.log`;
    // The deploy command fails while the flag file exists, and logs the serial it was given.
    const cmd = `test ! -e ${flag} && openssl x509 -noout -serial -in "$WILE_CERT_PATH" >> ${log}`;
    const r1 = await wile(issueArgs(env, [name], ["--deploy", "command", "--deploy-cmd", cmd]));
    assert.equal(r1.code, 0, dump(r1));
    writeFileSync(flag, "");
    await untilDue(name);
    const r = await wile(["cron"]);
    assert.equal(r.code, 1, dump(r));
    const renewedSerial = serialHex(certFiles(home, name).cert);
    assert.match(
      r.stderr,
      new RegExp(`${name}: renewed \\(serial ${renewedSerial}\\), but the deploy failed`),
    );
    const state = JSON.parse(readFileSync(join(home, "certs", name, "state.json"), "utf8"));
    assert.ok(state.deployPending, "the pending deploy is remembered");
    const listed = JSON.parse((await wile(["list", "--json"])).stdout).certificates.find(
      (c: { name: string }) => c.name === name,
    );
    assert.equal(listed.status, "failing", "wile list shows the undeployed renewal");
    assert.match(listed.lastError, /^deploy failed: /);
    rmSync(flag);
    const again = await wile(["cron"]);
    assert.equal(again.code, 0, dump(again));
    assert.equal(serialHex(certFiles(home, name).cert), renewedSerial, "not renewed again, only deployed");
    const served = readFileSync(log, "utf8").trim().split("\n").pop() ?? "";
    assert.equal(served, `serial=${renewedSerial}`, "the renewed certificate was deployed");
    assert.equal(
      JSON.parse(readFileSync(join(home, "certs", name, "state.json"), "utf8")).deployPending,
      undefined,
    );
  });

  it("renew refuses an unknown name and NAME with --all", async () => {
    const r = await wile(["renew", "nope.example"]);
    assert.equal(r.code, 2, dump(r));
    assert.match(r.stderr, /no certificate named "nope\.example"/);
    const both = await wile(["renew", "quiet.example", "--all"]);
    assert.equal(both.code, 2, dump(both));
  });
});

/**
 * renewal.json text whose webroot the web server does not serve. A name never validated before is
 * added too: Pebble may hand back a still valid authorization for the others (PEBBLE_AUTHZREUSE=0
 * makes that rare, not impossible), and the new name always needs its challenge.
 */
function brokenWebroot(renewalJson: string, name: string): string {
  const cfg = JSON.parse(renewalJson);
  const unserved = tempDir("wile-e2e-unserved-");
  const extra = `new-${Date.now().toString(36)}.${name}`;
  cfg.identifiers.push({ type: "dns", value: extra });
  cfg.challenge.webroots[name] = unserved;
  cfg.challenge.webroots[extra] = unserved;
  return JSON.stringify(cfg);
}

describe("renewal failures", () => {
  let longEnv: TestEnv;
  let longHome: string;
  before(async () => {
    longEnv = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "0" } });
    longHome = join(tempDir("wile-e2e-renew-fail-"), "wile");
  });
  after(async () => {
    await longEnv?.stop();
  });

  it("a failed renewal keeps the current pair, reports on stderr with a summary, and backs off", async () => {
    const name = "broken.example";
    // Long-lived (Pebble's default 5 years) and due at once by --renew-days: backoff applies
    // (close to expiry wile would rather retry every run).
    const r1 = await runWile(issueArgs(longEnv, [name], ["--renew-days", "3650"]), { home: longHome });
    assert.equal(r1.code, 0, dump(r1));
    const good = snapshot(longHome, name);
    // The web server no longer serves the webroot wile writes to.
    const renewalFile = certFiles(longHome, name).renewal;
    const original = readFileSync(renewalFile, "utf8");
    writeFileSync(renewalFile, brokenWebroot(original, name));
    // A fresh challenge, certainly: PEBBLE_AUTHZREUSE=0 still reuses 1 in 100 (test/helpers/authz.ts).
    await forgetAuthorizations(longEnv, longHome, [name]);
    const r = await runWile(["cron"], { home: longHome });
    assert.equal(r.code, 1, dump(r));
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /broken\.example: .*[Pp]reflight/, "names the certificate and the reason");
    assert.match(r.stderr, /^1 checked, 0 renewed, 1 failed: broken\.example: /m, "one summary line");
    assert.deepEqual(snapshot(longHome, name), good, "current certificate and key untouched");
    const state = JSON.parse(readFileSync(join(longHome, "certs", name, "state.json"), "utf8"));
    assert.equal(state.failures, 1);
    assert.ok(Date.parse(state.nextAttempt) > Date.now(), "next attempt is in the future");
    const list = await runWile(["list", "--json"], { home: longHome });
    const row = JSON.parse(list.stdout).certificates.find((c: { name: string }) => c.name === name);
    assert.equal(row.status, "failing");
    assert.match(row.lastError, /[Pp]reflight/);
    // Right away again: waiting for the backoff, no new attempt, nothing failed in this run.
    const again = await runWile(["cron"], { home: longHome });
    assert.equal(again.code, 0, dump(again));
    assert.equal(JSON.parse(readFileSync(join(longHome, "certs", name, "state.json"), "utf8")).failures, 1);
    // Repaired and forced: renewed, state reset.
    writeFileSync(renewalFile, original);
    const fixed = await runWile(["renew", name, "--force"], { home: longHome });
    assert.equal(fixed.code, 0, dump(fixed));
    assert.equal(JSON.parse(readFileSync(join(longHome, "certs", name, "state.json"), "utf8")).failures, 0);
  });

  it("a cron run with failures notifies (command and URL) and logs; a clean run sends the heartbeat", async () => {
    const home2 = join(tempDir("wile-e2e-notify-"), "wile");
    const got: Array<{ method: string; url: string; body: string }> = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        got.push({ method: req.method ?? "", url: req.url ?? "", body });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const name = "notify.example";
      const r1 = await runWile(issueArgs(longEnv, [name], ["--renew-days", "3650"]), { home: home2 });
      assert.equal(r1.code, 0, dump(r1));
      const renewalFile = certFiles(home2, name).renewal;
      const original = readFileSync(renewalFile, "utf8");
      writeFileSync(renewalFile, brokenWebroot(original, name));
      const out = join(tempDir("wile-e2e-notify-out-"), "notified");
      const r = await runWile(
        [
          "cron",
          "--notify-cmd",
          `printf '%s|%s|' "$WILE_EVENT" "$WILE_FAILED" > ${out}; cat >> ${out}`,
          "--notify-url",
          `http://127.0.0.1:${port}/notify`,
          "--heartbeat-url",
          `http://127.0.0.1:${port}/beat`,
        ],
        { home: home2 },
      );
      assert.equal(r.code, 1, dump(r));
      const [event, failedNames, json] = readFileSync(out, "utf8").split("|");
      assert.equal(event, "failure");
      assert.equal(failedNames, name);
      const doc = JSON.parse(json ?? "");
      assert.equal(doc.failed[0].name, name);
      assert.match(doc.summary, /^1 checked, 0 renewed, 1 failed: notify\.example: /);
      const posted = got.find((g) => g.url === "/notify");
      assert.equal(posted?.method, "POST");
      assert.equal(JSON.parse(posted?.body ?? "{}").event, "failure");
      assert.ok(!got.some((g) => g.url === "/beat"), "no heartbeat after a run with failures");
      const log = readFileSync(join(home2, "logs", "wile.log"), "utf8");
      assert.match(log, /ERROR \[\d+\] notify\.example: /, "the failure is in the log file");
      const config = JSON.parse(readFileSync(join(home2, "config.json"), "utf8"));
      assert.equal(config.heartbeatUrl, `http://127.0.0.1:${port}/beat`, "settings persist");

      // Repaired: the next run (settings from config.json) renews and sends the heartbeat.
      writeFileSync(renewalFile, original);
      const stateFile = join(home2, "certs", name, "state.json");
      const state = JSON.parse(readFileSync(stateFile, "utf8"));
      delete state.nextAttempt;
      writeFileSync(stateFile, JSON.stringify(state));
      got.length = 0;
      const ok = await runWile(["cron"], { home: home2 });
      assert.equal(ok.code, 0, dump(ok));
      assert.equal(ok.stdout + ok.stderr, "", "silent when all is well");
      assert.deepEqual(
        got.map((g) => `${g.method} ${g.url}`),
        ["GET /beat"],
      );
      assert.match(readFileSync(join(home2, "logs", "wile.log"), "utf8"), /notify\.example: renewed, serial/);
    } finally {
      server.close();
    }
  });
});
