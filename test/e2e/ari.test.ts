/**
 * End to end: renewal driven by ACME Renewal Information (RFC 9773). Pebble 2.4.0 has no ARI, so
 * wile talks to Pebble through test/helpers/ari-proxy.ts, which adds renewalInfo to the directory
 * and answers the windows each test sets. CertIDs are computed here with openssl, not with wile.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AriProxy, startAriProxy } from "../helpers/ari-proxy";
import { openssl, serialHex } from "../helpers/certs";
import { certFiles, hasStackTrace, issueArgs } from "../helpers/e2e";
import { httpsGet, startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

const HOUR = 3600_000;
const DAY = 24 * HOUR;

let env: TestEnv;
let proxy: AriProxy;

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "0" } });
  proxy = await startAriProxy(env);
  // Certificates no test talks about get a window far away, so they stay quiet.
  proxy.setWindow("*", { start: new Date(Date.now() + 300 * DAY), end: new Date(Date.now() + 301 * DAY) });
});

after(async () => {
  await proxy?.stop();
  await env?.stop();
});

/** env as seen through a proxy: wile issues against the proxy's directory. */
const via = (e: TestEnv, p: AriProxy): TestEnv => ({
  ...e,
  directoryUrl: p.directoryUrl,
  caBundle: p.caBundle,
});
const newHome = () => join(tempDir("wile-e2e-ari-"), "wile");

/** RFC 9773 CertID of a certificate file, from openssl's view of its AKI and serial. */
function certIdOf(certFile: string): string {
  const ext = openssl(["x509", "-in", certFile, "-noout", "-ext", "authorityKeyIdentifier"]);
  const line = ext.split("\n")[1] ?? "";
  const aki = line.replace(/keyid:/i, "").replace(/[^0-9A-Fa-f]/g, "");
  assert.ok(aki.length > 0, `no AKI in ${certFile}:\n${ext}`);
  let serial = openssl(["x509", "-in", certFile, "-noout", "-serial"])
    .trim()
    .replace(/^serial=/, "");
  if (serial.length % 2 === 1) serial = `0${serial}`;
  // DER INTEGER content: a leading 00 when the top bit is set.
  if (Number.parseInt(serial.slice(0, 2), 16) >= 0x80) serial = `00${serial}`;
  return `${Buffer.from(aki, "hex").toString("base64url")}.${Buffer.from(serial, "hex").toString("base64url")}`;
}

function ordersFor(p: AriProxy, name: string): Array<Record<string, unknown>> {
  return p.newOrders().filter((o) => JSON.stringify(o.identifiers ?? []).includes(`"${name}"`));
}

async function issue(home: string, name: string, e: TestEnv = env, p: AriProxy = proxy): Promise<string> {
  const r = await runWile(issueArgs(via(e, p), [name]), { home });
  assert.equal(r.code, 0, dump(r));
  return certIdOf(certFiles(home, name).cert);
}

const past = () => ({ start: new Date(Date.now() - 2 * DAY), end: new Date(Date.now() - DAY) });
const future = () => ({ start: new Date(Date.now() + 5 * DAY), end: new Date(Date.now() + 6 * DAY) });

describe("ARI test double (ari-proxy)", () => {
  it("adds renewalInfo to Pebble's directory and rewrites its URLs to the proxy", async () => {
    const r = await httpsGet(proxy.directoryUrl, readFileSync(proxy.caBundle));
    assert.equal(r.status, 200, r.body);
    const dir = JSON.parse(r.body) as Record<string, string>;
    assert.equal(dir.renewalInfo, `${proxy.origin}/renewal-info`);
    for (const k of ["newNonce", "newAccount", "newOrder"]) {
      assert.ok(dir[k]?.startsWith(`${proxy.origin}/`), `${k}: ${dir[k]}`);
    }
  });

  it("forwards requests to Pebble and answers the windows the test sets", async () => {
    const before = proxy.requests.length;
    const ca = readFileSync(proxy.caBundle);
    const nonce = await httpsGet(`${proxy.origin}/nonce-plz`, ca);
    assert.ok(nonce.status === 200 || nonce.status === 204, `newNonce via proxy: ${nonce.status}`);
    proxy.setWindow("test.id", {
      start: "2030-01-01T00:00:00Z",
      end: "2030-01-02T00:00:00Z",
      retryAfter: "60",
    });
    const w = await httpsGet(`${proxy.origin}/renewal-info/test.id`, ca);
    assert.deepEqual(JSON.parse(w.body), {
      suggestedWindow: { start: "2030-01-01T00:00:00Z", end: "2030-01-02T00:00:00Z" },
    });
    assert.equal(proxy.requests.length, before + 2);
  });
});

describe("renewal by ARI (RFC 9773)", () => {
  it("window in the past: wile cron renews, sending replaces = the old CertID", async () => {
    const home = newHome();
    const name = "past.ari.example";
    const certId = await issue(home, name);
    const oldSerial = serialHex(certFiles(home, name).cert);
    assert.equal(ordersFor(proxy, name).length, 1);
    assert.equal(ordersFor(proxy, name)[0]?.replaces, undefined, "a first issuance replaces nothing");
    proxy.setWindow(certId, past());

    const r = await runWile(["cron"], { home });
    assert.equal(r.code, 0, dump(r));
    assert.equal(r.stdout, "", "cron prints nothing on stdout when all is well");
    assert.equal(proxy.renewalInfoRequests(certId).length, 1, "asked the CA about the certificate");
    const newSerial = serialHex(certFiles(home, name).cert);
    assert.notEqual(newSerial, oldSerial, "a new certificate at the stable path");
    const orders = ordersFor(proxy, name);
    assert.equal(orders.length, 2);
    assert.equal(orders[1]?.replaces, certId, "newOrder carried replaces");
  });

  it("window in the future (after the next run): not renewed, exit 0; renew NAME exits 3", async () => {
    const home = newHome();
    const name = "future.ari.example";
    const certId = await issue(home, name);
    const serial = serialHex(certFiles(home, name).cert);
    proxy.setWindow(certId, { ...future(), retryAfter: "3600", explanationURL: "https://ca.example/why" });

    const r = await runWile(["cron"], { home });
    assert.equal(r.code, 0, dump(r));
    assert.equal(r.stdout, "");
    assert.equal(proxy.renewalInfoRequests(certId).length, 1);
    assert.equal(serialHex(certFiles(home, name).cert), serial, "not renewed");
    assert.equal(ordersFor(proxy, name).length, 1, "no new order");
    const state = JSON.parse(readFileSync(join(certFiles(home, name).dir, "state.json"), "utf8"));
    assert.equal(state.ari?.certId, certId);
    assert.equal(state.ari?.explanationURL, "https://ca.example/why");

    const single = await runWile(["renew", name], { home });
    assert.equal(single.code, 3, dump(single));
    assert.equal(serialHex(certFiles(home, name).cert), serial);
  });

  it("Retry-After is honoured: a second cron run right away does not ask again", async () => {
    const home = newHome();
    const name = "retry.ari.example";
    const certId = await issue(home, name);
    proxy.setWindow(certId, { ...future(), retryAfter: "3600" });
    const r1 = await runWile(["cron"], { home });
    assert.equal(r1.code, 0, dump(r1));
    assert.equal(proxy.renewalInfoRequests(certId).length, 1);
    const r2 = await runWile(["cron"], { home });
    assert.equal(r2.code, 0, dump(r2));
    assert.equal(proxy.renewalInfoRequests(certId).length, 1, "no renewal-info request before Retry-After");
    const state = JSON.parse(readFileSync(join(certFiles(home, name).dir, "state.json"), "utf8"));
    const wait = Date.parse(state.ari.nextCheck) - Date.parse(state.ari.checkedAt);
    assert.equal(wait, HOUR, "nextCheck = checkedAt + Retry-After");
  });

  it("a malformed answer falls back to the lifetime rule: long-lived certificate not due, no crash", async () => {
    const home = newHome();
    const name = "broken.ari.example";
    const certId = await issue(home, name);
    const serial = serialHex(certFiles(home, name).cert);
    for (const [i, answer] of [
      { status: 200, body: JSON.stringify({ suggestedWindow: { start: "soon", end: "later" } }) },
      { status: 200, body: "{not json" },
      {
        status: 200,
        body: JSON.stringify({ suggestedWindow: { start: future().end, end: future().start } }),
      },
      {
        status: 500,
        body: JSON.stringify({ type: "urn:ietf:params:acme:error:serverInternal", detail: "ARI is down" }),
      },
    ].entries()) {
      proxy.setWindow(certId, answer);
      const r = await runWile(["cron"], { home });
      assert.equal(r.code, 0, `answer ${i}: ${dump(r)}`);
      assert.equal(r.stdout, "");
      assert.ok(!hasStackTrace(r.stderr), dump(r));
      assert.equal(serialHex(certFiles(home, name).cert), serial, "not renewed");
      const state = JSON.parse(readFileSync(join(certFiles(home, name).dir, "state.json"), "utf8"));
      assert.ok(state.ari?.error, `answer ${i}: the ARI error is recorded in state.json`);
      // Make the next run ask again (a broken answer is otherwise cached for 6 h).
      state.ari.nextCheck = new Date(Date.now() - 1000).toISOString();
      writeFileSync(join(certFiles(home, name).dir, "state.json"), JSON.stringify(state));
    }
    // The client retries a 500 a few times within one run.
    assert.ok(proxy.renewalInfoRequests(certId).length >= 4);
    assert.equal(ordersFor(proxy, name).length, 1, "no new order");
  });

  it("alreadyReplaced: the order is retried without replaces and the certificate is renewed", async () => {
    const home = newHome();
    const name = "replaced.ari.example";
    const certId = await issue(home, name);
    const oldSerial = serialHex(certFiles(home, name).cert);
    proxy.setWindow(certId, past());
    proxy.rejectReplacesOnce();
    const r = await runWile(["cron"], { home });
    assert.equal(r.code, 0, dump(r));
    assert.notEqual(serialHex(certFiles(home, name).cert), oldSerial, "renewed anyway");
    const orders = ordersFor(proxy, name);
    assert.equal(
      orders.length,
      3,
      `issue, rejected renewal with replaces, renewal without: ${JSON.stringify(orders)}\n${dump(r)}`,
    );
    assert.equal(orders[1]?.replaces, certId);
    assert.equal(orders[2]?.replaces, undefined);
    const refused = proxy.requests.filter((q) => q.newOrder && q.status === 409);
    assert.equal(refused.length, 1);
  });
});

describe("ARI broken, short-lived certificates (Pebble certificateValidityPeriod)", () => {
  const VALIDITY_S = 8;
  let shortEnv: TestEnv;
  let shortProxy: AriProxy;
  before(async () => {
    shortEnv = await startTestEnv({ validityPeriod: VALIDITY_S, env: { PEBBLE_AUTHZREUSE: "0" } });
    shortProxy = await startAriProxy(shortEnv);
    shortProxy.setWindow("*", { status: 200, body: JSON.stringify({ explanation: "no window here" }) });
  });
  after(async () => {
    await shortProxy?.stop();
    await shortEnv?.stop();
  });

  it("the fallback (1/2 of a lifetime under 10 days) makes it due and cron renews it", async () => {
    const home = newHome();
    const name = "short.ari.example";
    await issue(home, name, shortEnv, shortProxy);
    const file = certFiles(home, name).cert;
    const oldSerial = serialHex(file);
    const early = await runWile(["cron"], { home });
    assert.equal(early.code, 0, dump(early));
    assert.equal(serialHex(file), oldSerial, "not due right after issuance");

    const { X509Certificate } = await import("node:crypto");
    const c = new X509Certificate(readFileSync(file));
    const from = Date.parse(c.validFrom);
    const to = Date.parse(c.validTo);
    const dueAt = to - (to - from) / 2 + 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, dueAt - Date.now())));
    const r = await runWile(["cron"], { home });
    assert.equal(r.code, 0, dump(r));
    assert.notEqual(serialHex(file), oldSerial, "renewed by the fallback rule");
    assert.ok(existsSync(join(certFiles(home, name).dir, "state.json")));
  });
});
