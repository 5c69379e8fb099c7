/**
 * Stateless http-01 end to end, with real web servers: `wile stateless` prints configuration for
 * this home's account; the test pastes the printed nginx, HAProxy and Apache snippets into real
 * servers, and Pebble's VA validates `wile issue --stateless` through each of them:
 *   Pebble VA -> nginx (testenv's httpPort)  *.nginx.test: the nginx snippet answers;
 *                                            *.haproxy.test: proxied to HAProxy 2.6 (its snippet);
 *                                            *.apache.test: proxied to apache2 -X (its snippet);
 *                                            anything else: the default server, 404.
 * Before the snippets are pasted, an issue fails at wile's preflight, printing the snippet, before
 * any challenge is answered (Pebble's log). Nothing is written to the webroot at any time. Pebble
 * reuses no authorization, so the renewal is validated again.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { forgetAuthorizations } from "../helpers/authz";
import { keyTypeOf, sanNames, serialHex } from "../helpers/certs";
import { accessLog, certFiles, pebbleFetches } from "../helpers/e2e";
import { ensureHaproxy, HAPROXY } from "../helpers/haproxy";
import {
  findBinary,
  freePort,
  httpGet,
  type Proc,
  startProc,
  startTestEnv,
  stopProc,
  type TestEnv,
  waitReady,
} from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;
let tmp: string;
const procs: Proc[] = [];

before(async () => {
  env = await startTestEnv({ nginxExtra: true, env: { PEBBLE_AUTHZREUSE: "0" } });
  home = join(tempDir("wile-e2e-stateless-"), "wile");
  tmp = tempDir("wile-e2e-stateless-servers-");
});

after(async () => {
  await Promise.all(procs.map(stopProc));
  await env?.stop();
});

const caArgs = () => ["--server", env.directoryUrl, "--ca-bundle", env.caBundle];
const wile = (args: string[]) => runWile(args, { home, timeoutMs: 60_000 });
/** --stateless for names, --resolve for wile's preflight to reach nginx. */
const issueStateless = (names: string[], extra: string[] = []) =>
  wile([
    "issue",
    ...names.flatMap((n) => ["-d", n, "--resolve", env.resolveArg(n)]),
    "--stateless",
    ...caArgs(),
    ...extra,
  ]);
const challengePosts = () => (readFileSync(env.pebbleLog, "utf8").match(/POST \/chalZ\//g) ?? []).length;
const get = (port: number, host: string, token: string) =>
  httpGet(`http://127.0.0.1:${port}/.well-known/acme-challenge/${token}`, { Host: host });

let thumbprint: string;
let snippets: { nginx: string; apache: string; haproxy: string };

describe("wile stateless and issue --stateless against Pebble through nginx, HAProxy and Apache", () => {
  it("wile stateless registers the account and prints the snippets; --format picks one", async () => {
    const j = await wile(["stateless", "--json", ...caArgs()]);
    assert.equal(j.code, 0, dump(j));
    assert.match(j.stderr, /Registered account/);
    const doc = JSON.parse(j.stdout) as { thumbprint: string; account: string; snippets: typeof snippets };
    thumbprint = doc.thumbprint;
    snippets = doc.snippets;
    assert.match(thumbprint, /^[A-Za-z0-9_-]{43}$/);
    assert.match(doc.account, /\/my-account\//);
    assert.deepEqual(Object.keys(snippets), ["nginx", "apache", "haproxy"]);
    for (const s of Object.values(snippets)) assert.ok(s.includes(thumbprint));
    const t = await wile([
      "stateless",
      "-d",
      "a.example",
      "-d",
      "b.example",
      "--format",
      "nginx",
      ...caArgs(),
    ]);
    assert.equal(t.code, 0, dump(t));
    assert.equal(
      t.stdout.trimEnd(),
      snippets.nginx,
      "the same account, the same snippet, whatever the names",
    );
    assert.doesNotMatch(t.stderr, /Registered account/);
    assert.match(
      t.stderr,
      /answers for a\.example, b\.example, reload it, then: wile issue -d a\.example -d b\.example --stateless/,
    );
    // Names are checked before anything is contacted; a wildcard cannot be proved over HTTP.
    for (const bad of ["bad..example", "*.example.com"]) {
      const r = await wile(["stateless", "-d", bad, "--server", "https://127.0.0.1:1/dir"]);
      assert.equal(r.code, 2, dump(r));
    }
  });

  it("without the snippet: exit 1 at the preflight, the snippet printed, no challenge answered", async () => {
    assert.ok(thumbprint);
    const r = await issueStateless(["missing.example"]);
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /Preflight for missing\.example failed: .* answered HTTP 404/);
    assert.ok(r.stderr.includes(snippets.nginx.split("\n").slice(1).join("\n")), dump(r));
    assert.match(r.stderr, /The CA was not asked to validate missing\.example/);
    assert.equal(challengePosts(), 0, "Pebble was never told to validate");
    assert.deepEqual(pebbleFetches(env, "missing.example"), []);
  });

  it("the printed snippets in nginx, HAProxy and Apache: Pebble validates RSA and EC through them; renew replays", async () => {
    assert.ok(thumbprint);
    const [haproxyPort, apachePort] = [await freePort(), await freePort()];
    await Promise.all([startHaproxy(haproxyPort), startApache(apachePort)]);
    // Paste: nginx answers *.nginx.test itself and forwards the others to HAProxy and Apache.
    const proxy = (port: number) =>
      `location / { proxy_pass http://127.0.0.1:${port}; proxy_set_header Host $host; }`;
    writeFileSync(
      env.nginxExtraConf,
      [
        `server { listen 127.0.0.1:${env.httpPort}; server_name ~\\.nginx\\.test$;\n${snippets.nginx}\n}`,
        `server { listen 127.0.0.1:${env.httpPort}; server_name ~\\.haproxy\\.test$; ${proxy(haproxyPort)} }`,
        `server { listen 127.0.0.1:${env.httpPort}; server_name ~\\.apache\\.test$; ${proxy(apachePort)} }`,
        "",
      ].join("\n"),
    );
    await env.reloadNginx();
    // The servers themselves, fetched directly: a token in, TOKEN.THUMBPRINT out; others 404.
    for (const port of [haproxyPort, apachePort]) {
      const ok = await get(port, "x.test", "Tok_en-1");
      assert.deepEqual([ok.status, ok.body.trimEnd()], [200, `Tok_en-1.${thumbprint}`]);
      assert.equal((await get(port, "x.test", "not.a.token")).status, 404);
    }
    for (const host of ["probe.nginx.test", "probe.haproxy.test", "probe.apache.test"]) {
      const got = await get(env.httpPort, host, "probe");
      assert.deepEqual([got.status, got.body.trimEnd()], [200, `probe.${thumbprint}`], host);
    }

    const rsa = ["a.nginx.test", "b.haproxy.test"];
    const ec = ["c.nginx.test", "d.apache.test"];
    const [r1, r2] = await Promise.all([
      issueStateless(rsa, ["--key-type", "rsa-2048"]),
      issueStateless(ec, ["--key-type", "ec-256"]),
    ]);
    assert.equal(r1.code, 0, dump(r1));
    assert.equal(r2.code, 0, dump(r2));
    for (const [names, type] of [
      [rsa, "rsa-2048"],
      [ec, "ec-256"],
    ] as const) {
      const f = certFiles(home, names[0] as string);
      assert.deepEqual(sanNames(f.cert).sort(), [...names].sort());
      assert.equal(keyTypeOf(f.privkey), type);
      const cfg = JSON.parse(readFileSync(f.renewal, "utf8")) as { challenge: Record<string, unknown> };
      assert.deepEqual(cfg.challenge, { type: "http-01", webroots: {}, stateless: names });
      for (const n of names) {
        const seen = await vaFetches(n, 0);
        assert.ok(seen.length > 0 && seen.every((l) => l.status === 200), `${n}: ${JSON.stringify(seen)}`);
      }
    }
    assert.deepEqual(readdirSync(env.webroot), [], "nothing written to the webroot");

    const serial = serialHex(certFiles(home, "a.nginx.test").cert);
    const before = pebbleFetches(env, "b.haproxy.test").length;
    // A fresh challenge, certainly: PEBBLE_AUTHZREUSE=0 still reuses 1 in 100 (test/helpers/authz.ts).
    await forgetAuthorizations(env, home, rsa);
    const r = await wile(["renew", "a.nginx.test", "--force"]);
    assert.equal(r.code, 0, dump(r));
    assert.notEqual(serialHex(certFiles(home, "a.nginx.test").cert), serial);
    assert.ok(
      (await vaFetches("b.haproxy.test", before)).length > before,
      `validated again through HAProxy: ${before} fetches before the renewal, log now:\n${accessLog(env)
        .filter((l) => l.host.endsWith(".test"))
        .map((l) => l.raw)
        .join("\n")}\n${dump(r)}`,
    );
    assert.deepEqual(readdirSync(env.webroot), []);
  });
});

async function startHaproxy(port: number): Promise<void> {
  ensureHaproxy();
  const cfg = join(tmp, "haproxy.cfg");
  writeFileSync(
    cfg,
    [
      "defaults",
      "  mode http",
      "  timeout connect 5s",
      "  timeout client 10s",
      "  timeout server 10s",
      "frontend web",
      `  bind 127.0.0.1:${port}`,
      ...snippets.haproxy.split("\n").map((l) => `  ${l}`),
      "  http-request return status 404",
      "",
    ].join("\n"),
  );
  const p = startProc(
    "haproxy",
    HAPROXY,
    ["-f", cfg, "-db"],
    { PATH: process.env.PATH },
    join(tmp, "haproxy.log"),
  );
  procs.push(p);
  await waitReady(p, `HAProxy on ${port}`, async () => (await get(port, "x", "x")).status === 200);
}

async function startApache(port: number): Promise<void> {
  const apache2 = findBinary("apache2");
  const mods = "/usr/lib/apache2/modules";
  const cfg = join(tmp, "apache2.conf");
  writeFileSync(
    cfg,
    [
      `ServerRoot ${tmp}`,
      `PidFile ${tmp}/apache2.pid`,
      `ErrorLog ${tmp}/apache2-error.log`,
      `LoadModule mpm_event_module ${mods}/mod_mpm_event.so`,
      `LoadModule authz_core_module ${mods}/mod_authz_core.so`,
      `LoadModule alias_module ${mods}/mod_alias.so`,
      `Listen 127.0.0.1:${port}`,
      "ServerName localhost",
      `DocumentRoot ${tmp}`,
      `<VirtualHost 127.0.0.1:${port}>`,
      snippets.apache,
      "</VirtualHost>",
      "",
    ].join("\n"),
  );
  // What an operator runs after pasting (Debian's apache2ctl passes -f through).
  const t = spawnSync(findBinary("apache2ctl"), ["-t", "-f", cfg], { encoding: "utf8" });
  assert.equal(t.status, 0, `apache2ctl -t: ${t.stdout}${t.stderr}`);
  assert.match(t.stderr, /Syntax OK/);
  const p = startProc(
    "apache2",
    apache2,
    ["-X", "-f", cfg],
    { PATH: process.env.PATH },
    join(tmp, "apache2.log"),
  );
  procs.push(p);
  await waitReady(p, `Apache on ${port}`, async () => (await get(port, "x", "x")).status === 200, [
    join(tmp, "apache2-error.log"),
  ]);
}

/**
 * Pebble's fetches of `host` in nginx's access log, once there are more than `known` (or after 5 s):
 * nginx writes a request's line when it finishes the request, which need not be before Pebble (its
 * client) has moved on and wile has exited.
 */
async function vaFetches(host: string, known: number): Promise<ReturnType<typeof pebbleFetches>> {
  const until = Date.now() + 5000;
  while (pebbleFetches(env, host).length <= known && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return pebbleFetches(env, host);
}
