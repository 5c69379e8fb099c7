/**
 * tls-alpn-01 (RFC 8737) end to end: Pebble's VA connects to port P (its `tlsPort`) of the address
 * pebble-challtestsrv gives each name, so that the cases run side by side on one Pebble, each on
 * its own loopback address:
 * - 127.0.0.1, 127.0.0.4: wile itself listens on P (EC and RSA keys; renew --all replays --alpn
 *   for two certificates at once on one port);
 * - 127.0.0.8 and ::1: IP identifiers, asked for by their reverse-DNS SNI (RFC 8738);
 * - 127.0.0.3: a real nginx `stream` server with ssl_preread on P passes acme-tls/1 to wile on
 *   another port and everything else to an nginx https site, which clients keep getting meanwhile;
 * - 127.0.0.2: a real HAProxy in TCP mode does the same with req.ssl_alpn;
 * - 127.0.0.5: P taken: exit 2 before anything is contacted.
 * The nginx and HAProxy configurations are those in docs/http-01.md, with the test's ports.
 */
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "node:tls";
import { forgetAuthorizations } from "../helpers/authz";
import { keyMatchesCert, keyTypeOf, sanNames } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { certFiles, hasStackTrace } from "../helpers/e2e";
import { ensureHaproxy, HAPROXY, selfSignedPem } from "../helpers/haproxy";
import { giveToNobody, otherUserBin } from "../helpers/other-user";
import {
  findBinary,
  freePort,
  nginxTempPaths,
  type Proc,
  startProc,
  startTestEnv,
  stopProc,
  type TestEnv,
  waitReady,
} from "../helpers/testenv";
import { dump, type RunResult, runWile, tempDir } from "../helpers/wile";

const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
const missingStream =
  !existsSync(STREAM_MODULE) && `${STREAM_MODULE} is missing (Debian libnginx-mod-stream)`;

let env: TestEnv;
let port: number;
const procs: Proc[] = [];
let siteDir: string;
let sitePort: number;

before(async () => {
  port = await freePort();
  env = await startTestEnv({ tlsPort: port, env: { PEBBLE_AUTHZREUSE: "0" } });
  await Promise.all([
    env.addA("rsa.alpn.test", "127.0.0.4"),
    env.addA("nginx.alpn.test", "127.0.0.3"),
    env.addA("haproxy.alpn.test", "127.0.0.2"),
  ]);
  // The site behind nginx and HAProxy: an nginx https server with its own certificate.
  siteDir = tempDir("wile-e2e-alpn-site-");
  sitePort = await freePort();
  writeFileSync(join(siteDir, "site.pem"), selfSignedPem(siteDir, "site.alpn.test").pem, { mode: 0o600 });
  const nginx = findBinary("nginx");
  const conf = join(siteDir, "nginx.conf");
  writeFileSync(
    conf,
    `daemon off;
pid ${siteDir}/nginx.pid;
error_log ${siteDir}/error.log info;
events { worker_connections 64; }
http {
${nginxTempPaths(siteDir, nginx)}
  access_log off;
  server {
    listen 127.0.0.1:${sitePort} ssl;
    ssl_certificate ${siteDir}/site.pem;
    ssl_certificate_key ${siteDir}/site.pem;
    return 200 "the site\\n";
  }
}
`,
  );
  const site = startProc("nginx (site)", nginx, ["-c", conf, "-p", siteDir], {}, join(siteDir, "nginx.log"));
  procs.push(site);
  await waitReady(
    site,
    `https site on ${sitePort}`,
    async () => (await peerCN(sitePort, "127.0.0.1", [])) !== "",
  );
});

after(async () => {
  await Promise.all(procs.map(stopProc));
  await env?.stop();
});

const newHome = () => join(tempDir("wile-e2e-alpn-"), "wile");
const caArgs = () => ["--server", env.directoryUrl, "--ca-bundle", env.caBundle];
const wile = (args: string[], home: string) => runWile(args, { home, timeoutMs: 45_000 });
/** `wile issue -d NAME --alpn --tls-port PORT --tls-address ADDRESS [extra]` at the test's Pebble. */
const alpnArgs = (name: string, tlsPort: number, address: string, extra: string[] = []) => [
  "issue",
  "-d",
  name,
  "--alpn",
  "--tls-port",
  String(tlsPort),
  "--tls-address",
  address,
  ...extra,
  ...caArgs(),
];

/** The subject CN of the certificate served on address:p for SNI NAME with the given ALPN list; "" when refused. */
function peerCN(p: number, address: string, alpn: string[], name = "nginx.alpn.test"): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({
      port: p,
      host: address,
      servername: name,
      ALPNProtocols: alpn,
      rejectUnauthorized: false,
    });
    s.setTimeout(3000, () => s.destroy());
    s.on("secureConnect", () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.destroy();
      resolve(typeof cn === "string" ? cn : "");
    });
    s.on("error", () => resolve(""));
    s.on("close", () => resolve(""));
  });
}

/**
 * Runs `wile issue` for `name` with --alpn on wile's port `backend` (127.0.0.1) while an ordinary
 * HTTPS client (ALPN h2, http/1.1) keeps connecting to the front `address`:P: returns the run and
 * the CNs that client got.
 */
/**
 * Issues `name` with wile listening on `backend` behind a front (nginx or HAProxy) on address:port,
 * while an HTTPS client keeps asking the front for the site: the CA and wile's preflight reach
 * wile through the front, and every HTTPS client got the site meanwhile.
 */
async function issuesThroughFront(name: string, address: string, backend: number): Promise<void> {
  const home = newHome();
  const run = wile(
    alpnArgs(name, backend, "127.0.0.1", [
      // wile's own check goes through the front too, as the CA's connection does.
      "--resolve",
      `${name}:${port}:${address}`,
      "-v",
    ]),
    home,
  );
  let done = false;
  const finished = run.finally(() => {
    done = true;
  });
  const seen: string[] = [];
  while (!done) {
    seen.push(await peerCN(port, address, ["h2", "http/1.1"], name));
    await new Promise((r) => setTimeout(r, 100));
  }
  const r = await finished;
  checkIssued(r, home, name);
  const re = (text: string) => text.replace(/\./g, "\\.");
  assert.match(
    r.stderr,
    new RegExp(
      `Preflight for ${re(name)}: ${re(address)}:\\d+ answers acme-tls/1 with the challenge certificate`,
    ),
  );
  assert.ok(seen.length > 0 && seen.every((cn) => cn === "site.alpn.test"), seen.join(", "));
}

function checkIssued(r: RunResult, home: string, name: string, keyType = "ec-256"): void {
  assert.equal(r.code, 0, dump(r));
  assert.doesNotMatch(
    r.stderr,
    /Preflight .* could not/,
    "wile's preflight reached its listener or was not asked",
  );
  const f = certFiles(home, name);
  assert.deepEqual(sanNames(f.cert), [name]);
  assert.ok(keyMatchesCert(f.privkey, f.cert));
  assert.equal(keyTypeOf(f.privkey), keyType);
  const renewal = JSON.parse(readFileSync(f.renewal, "utf8"));
  assert.equal(renewal.challenge.type, "tls-alpn-01");
  assert.deepEqual(renewal.challenge.alpn.names, [name]);
}

// First and alone, so that Pebble's log shows this run asked nothing.
describe("wile issue --alpn: a port wile cannot have", () => {
  it("the port is taken: exit 2 naming the port and its holder; nothing was asked of the CA", async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.5", resolve));
    try {
      const logBefore = readFileSync(env.pebbleLog, "utf8").length;
      const home = newHome();
      const r = await wile(alpnArgs("taken.alpn.test", port, "127.0.0.5"), home);
      assert.equal(r.code, 2, dump(r));
      assert.match(
        r.stderr,
        new RegExp(
          `127\\.0\\.0\\.5:${port} for tls-alpn-01 \\(--alpn\\): it is in use: node \\(pid ${process.pid}\\) holds it`,
        ),
      );
      assert.match(r.stderr, /--tls-port/);
      assert.equal(hasStackTrace(r.stderr), false);
      assert.equal(
        readFileSync(env.pebbleLog, "utf8").length,
        logBefore,
        "Pebble's log did not grow: no account, no order",
      );
      assert.equal(existsSync(join(home, "accounts")), false);
    } finally {
      holder.close();
    }
  });

  const start = Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8"));
  it("a port below 1024 as an unprivileged user: exit 2 with the three ways; nothing was asked of the CA", {
    skip: skipUnlessAvailable(
      !(start > 1) && `net.ipv4.ip_unprivileged_port_start is ${start}: no port is privileged`,
    ),
  }, async () => {
    const pub = tempDir("wile-e2e-alpn-nobody-");
    chmodSync(pub, 0o755);
    const caBundle = join(pub, "ca.pem");
    copyFileSync(env.caBundle, caBundle);
    chmodSync(caBundle, 0o644);
    const home = join(pub, "wile");
    mkdirSync(home, { mode: 0o700 });
    giveToNobody(home);
    const privileged = Math.min(start - 1, 443);
    const logBefore = readFileSync(env.pebbleLog, "utf8").length;
    const r = await runWile(
      [
        "issue",
        "-d",
        "low.alpn.test",
        "--alpn",
        "--tls-port",
        String(privileged),
        "--tls-address",
        "127.0.0.9",
        "--server",
        env.directoryUrl,
        "--ca-bundle",
        caBundle,
      ],
      { home, timeoutMs: 30_000, bin: otherUserBin() ?? "" },
    );
    assert.equal(r.code, 2, dump(r));
    assert.match(
      r.stderr,
      new RegExp(`127\\.0\\.0\\.9:${privileged} for tls-alpn-01 \\(--alpn\\): permission denied`),
    );
    for (const way of [
      "setcap cap_net_bind_service",
      "authbind",
      "net.ipv4.ip_unprivileged_port_start",
      "--tls-port",
    ]) {
      assert.ok(r.stderr.includes(way), `${way}:\n${r.stderr}`);
    }
    assert.equal(hasStackTrace(r.stderr), false);
    assert.equal(readFileSync(env.pebbleLog, "utf8").length, logBefore, "Pebble's log did not grow");
  });
});

describe("wile issue --alpn against Pebble", { concurrency: true }, () => {
  it("EC key, wile on the CA's port; renew --all replays --alpn for two certificates on one port at once; nothing listens afterwards", async () => {
    const home = newHome();
    const name = "ec.alpn.test";
    const r = await wile(
      alpnArgs(name, port, "127.0.0.1", ["--resolve", `${name}:${port}:127.0.0.1`, "-v"]),
      home,
    );
    checkIssued(r, home, name);
    assert.match(
      r.stderr,
      new RegExp(
        `Preflight for ${name}: 127\\.0\\.0\\.1:${port} answers acme-tls/1 with the challenge certificate`,
      ),
    );
    assert.match(r.stderr, new RegExp(`Listening for tls-alpn-01 validation on 127\\.0\\.0\\.1:${port}`));
    const renewal = JSON.parse(readFileSync(certFiles(home, name).renewal, "utf8"));
    assert.deepEqual(renewal.challenge.alpn, { names: [name], port, address: "127.0.0.1" });
    assert.deepEqual(renewal.challenge.webroots, {});
    assert.equal(await peerCN(port, "127.0.0.1", ["acme-tls/1"], name), "", "the listener is closed");

    // A second certificate on the same port; renew --all renews both at once in one process,
    // which must share the port rather than fail the second with "in use".
    const second = "two.alpn.test";
    const r2 = await wile(
      alpnArgs(second, port, "127.0.0.1", ["--resolve", `${second}:${port}:127.0.0.1`]),
      home,
    );
    checkIssued(r2, home, second);
    const before = [name, second].map((n) => readFileSync(certFiles(home, n).cert, "utf8"));
    // The renewals must prove control again: no authorization reuse (test/helpers/authz.ts).
    await forgetAuthorizations(env, home, [name, second]);
    const again = await wile(["renew", "--all", "--force", "--parallel", "2"], home);
    assert.equal(again.code, 0, dump(again));
    assert.equal(again.stderr.match(/Listening for tls-alpn-01 validation/g)?.length, 2, again.stderr);
    assert.doesNotMatch(
      again.stderr,
      /Preflight .* could not/,
      "the renewals' preflight (--resolve replayed) reached the listener",
    );
    const after = [name, second].map((n) => readFileSync(certFiles(home, n).cert, "utf8"));
    assert.ok(after[0] !== before[0] && after[1] !== before[1], "both certificates are new");
  });

  it("RSA key", async () => {
    const home = newHome();
    const name = "rsa.alpn.test";
    const r = await wile(
      alpnArgs(name, port, "127.0.0.4", ["--resolve", `${name}:${port}:127.0.0.4`, "--key-type", "rsa-2048"]),
      home,
    );
    checkIssued(r, home, name, "rsa-2048");
  });

  it("IP addresses (RFC 8738): the CA asks for 8.0.0.127.in-addr.arpa (and ::1's ip6.arpa name) and gets an iPAddress certificate", async () => {
    const home = newHome();
    const r = await wile(alpnArgs("127.0.0.8", port, "127.0.0.8", ["-v"]), home);
    assert.equal(r.code, 0, dump(r));
    assert.match(r.stderr, /serving the challenge certificate for 8\.0\.0\.127\.in-addr\.arpa/);
    assert.match(r.stderr, /tls-alpn-01: answered 8\.0\.0\.127\.in-addr\.arpa/);
    assert.deepEqual(sanNames(certFiles(home, "127.0.0.8").cert), ["IP:127.0.0.8"]);

    // IPv6: the nibbles of ::1 under ip6.arpa.
    const home6 = newHome();
    const r6 = await wile(alpnArgs("::1", port, "::1", ["-v"]), home6);
    assert.equal(r6.code, 0, dump(r6));
    assert.match(r6.stderr, new RegExp(`tls-alpn-01: answered 1\\.${"0\\.".repeat(31)}ip6\\.arpa`));
  });

  it("the CA cannot reach wile (443 not forwarded): exit 1 with the CA's reason, the listener closed, no hang", async () => {
    const home = newHome();
    const elsewhere = await freePort();
    const r = await wile(alpnArgs("lost.alpn.test", elsewhere, "127.0.0.1"), home);
    assert.equal(r.code, 1, dump(r));
    assert.equal(r.timedOut, false);
    assert.match(r.stderr, /tls-alpn-01/);
    assert.match(r.stderr, /Failed to connect to 127\.0\.0\.1:\d+ for the tls-alpn-01 challenge/);
    assert.match(r.stderr, /For tls-alpn-01: the CA connects to port 443/);
    assert.doesNotMatch(r.stderr, /For http-01/);
    assert.equal(
      await peerCN(elsewhere, "127.0.0.1", ["acme-tls/1"], "lost.alpn.test"),
      "",
      "the listener is closed",
    );
  });

  it("443 reaches a web server instead of wile: the preflight stops the run before the CA validates", async () => {
    const home = newHome();
    const name = "misrouted.alpn.test";
    const r = await wile(
      alpnArgs(name, port, "127.0.0.10", ["--resolve", `${name}:${sitePort}:127.0.0.1`]),
      home,
    );
    assert.equal(r.code, 1, dump(r));
    assert.match(
      r.stderr,
      new RegExp(`Preflight for ${name} failed: 127\\.0\\.0\\.1:${sitePort} refuses ALPN acme-tls/1`),
    );
    assert.match(r.stderr, /--no-preflight/);
    assert.doesNotMatch(r.stderr, /Validating/, "the CA was not asked to validate");
  });

  it("SIGTERM while listening: exit 143, the port is free at once", async () => {
    const home = newHome();
    const own = await freePort();
    const r = await runWile(alpnArgs("stop.alpn.test", own, "127.0.0.1"), {
      home,
      timeoutMs: 30_000,
      interrupt: { when: /Listening for tls-alpn-01/, signal: "SIGTERM" },
    });
    assert.equal(r.interrupted, true, dump(r));
    assert.equal(r.code, 143, dump(r));
    const free = createServer();
    await new Promise<void>((resolve, reject) => {
      free.once("error", reject);
      free.listen(own, "127.0.0.1", resolve);
    });
    free.close();
  });

  it("bad --alpn input is exit 2 before anything is contacted", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["-d", "*.alpn.test", "--alpn"], /wildcard name; CAs do not validate wildcards with tls-alpn-01/],
      [["-d", "a.alpn.test", "--alpn", "--tls-port", "44x3"], /--tls-port "44x3" is not a port number/],
      [
        ["-d", "a.alpn.test", "--alpn", "--tls-address", "localhost"],
        /--tls-address "localhost" is not an IP address/,
      ],
      [
        ["-d", "a.alpn.test", "-w", "/tmp", "--tls-port", "8443"],
        /--tls-port is given but no name uses --alpn/,
      ],
      [
        ["-d", "a.alpn.test", "--alpn", "--tls-port", String(port), "--tls-address", "192.0.2.7"],
        /192\.0\.2\.7:\d+ for tls-alpn-01 \(--alpn\): 192\.0\.2\.7 is not an address of this machine/,
      ],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const home = newHome();
        const r = await wile(["issue", ...args, ...caArgs()], home);
        assert.equal(r.code, 2, dump(r));
        assert.match(r.stderr, message);
        assert.equal(existsSync(join(home, "accounts")), false, "no account");
      }),
    );
  });

  it("nginx stream + ssl_preread routes acme-tls/1 to wile; HTTPS clients get the site meanwhile", {
    skip: skipUnlessAvailable(missingStream),
  }, async () => {
    const backend = await freePort();
    const dir = tempDir("wile-e2e-alpn-nginx-");
    const conf = join(dir, "nginx.conf");
    // As in docs/http-01.md, with the test's addresses and ports.
    writeFileSync(
      conf,
      `load_module ${STREAM_MODULE};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
stream {
  map $ssl_preread_alpn_protocols $tls_upstream {
    ~\\bacme-tls/1\\b  127.0.0.1:${backend};
    default          127.0.0.1:${sitePort};
  }
  server {
    listen 127.0.0.3:${port};
    ssl_preread on;
    proxy_pass $tls_upstream;
  }
}
`,
    );
    const nginx = startProc(
      "nginx (stream)",
      findBinary("nginx"),
      ["-c", conf, "-p", dir],
      {},
      join(dir, "nginx.log"),
    );
    procs.push(nginx);
    await waitReady(
      nginx,
      `stream on 127.0.0.3:${port}`,
      async () => (await peerCN(port, "127.0.0.3", ["http/1.1"])) !== "",
      [join(dir, "error.log")],
    );
    await issuesThroughFront("nginx.alpn.test", "127.0.0.3", backend);
  });

  it("HAProxy req.ssl_alpn routes acme-tls/1 to wile; HTTPS clients get the site meanwhile", async () => {
    ensureHaproxy();
    const backend = await freePort();
    const dir = tempDir("wile-e2e-alpn-haproxy-");
    const cfg = join(dir, "haproxy.cfg");
    // As in docs/http-01.md, with the test's addresses and ports.
    writeFileSync(
      cfg,
      `defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s

frontend tls
  bind 127.0.0.2:${port}
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  use_backend wile_acme if { req.ssl_alpn acme-tls/1 }
  default_backend site

backend wile_acme
  server wile 127.0.0.1:${backend}

backend site
  server site 127.0.0.1:${sitePort}
`,
    );
    const haproxy = startProc("haproxy", HAPROXY, ["-f", cfg, "-db"], {}, join(dir, "haproxy.log"));
    procs.push(haproxy);
    await waitReady(
      haproxy,
      `haproxy on 127.0.0.2:${port}`,
      async () => (await peerCN(port, "127.0.0.2", ["http/1.1"])) !== "",
    );
    await issuesThroughFront("haproxy.alpn.test", "127.0.0.2", backend);
  });
});
