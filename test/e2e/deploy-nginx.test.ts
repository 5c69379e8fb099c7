/**
 * End to end: `wile issue --deploy nginx` against Pebble, with a second, real nginx serving HTTPS
 * from files in a temp dir. What nginx serves is checked here with `openssl s_client`,
 * independently of wile's own verify.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serialHex, servedSerial } from "../helpers/certs";
import { certFiles, issueArgs } from "../helpers/e2e";
import { findBinary, freePort, startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;
let prefix: string;
let conf: string;
let port: number;
let nginx: ChildProcess | undefined;
let nginxBin: string;

const certPath = () => join(prefix, "cert.pem");
const keyPath = () => join(prefix, "key.pem");
// By name, as operators write it (found in /usr/sbin even where PATH lacks it).
const reloadCmd = () => `nginx -p ${prefix} -c ${conf} -s reload`;

function tcpOpen(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port: p });
    s.on("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** Serial (as openssl prints it) of the leaf nginx serves for `name`. */
const served = (name: string) => servedSerial(port, name);

/** Waits until nginx serves the certificate with `serial` (a reload takes a moment). */
async function eventuallyServes(name: string, serial: string): Promise<void> {
  let got = "";
  for (let i = 0; i < 40; i++) {
    got = served(name);
    if (got === serial) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(got, serial, "nginx serves the new certificate");
}

before(async () => {
  nginxBin = findBinary("nginx");
  findBinary("openssl");
  env = await startTestEnv();
  home = join(tempDir("wile-e2e-deploy-nginx-"), "wile");
  prefix = tempDir("wile-e2e-nginx2-");
  mkdirSync(join(prefix, "logs"), { recursive: true });
  port = await freePort();
  // A self-signed placeholder, as a fresh server has before its first real certificate.
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"].concat([
      "-subj",
      "/CN=placeholder",
      "-keyout",
      keyPath(),
      "-out",
      certPath(),
    ]),
    { stdio: "ignore" },
  );
  conf = join(prefix, "nginx.conf");
  const user = process.getuid?.() === 0 ? "user root root;\n" : "";
  writeFileSync(
    conf,
    `daemon off;
master_process on;
worker_processes 1;
${user}pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body_temp;
  server {
    listen 127.0.0.1:${port} ssl default_server;
    server_name _;
    ssl_certificate ${certPath()};
    ssl_certificate_key ${keyPath()};
    location / { return 200 "ok\\n"; }
  }
}
`,
  );
  nginx = spawn(nginxBin, ["-p", prefix, "-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  nginx.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  for (let i = 0; i < 100 && !(await tcpOpen(port)); i++) {
    if (nginx.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(await tcpOpen(port), `the second nginx did not start: ${stderr}`);
  assert.match(served("x.example"), /^[0-9A-F]+$/);
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    nginx.kill("SIGQUIT");
    await new Promise((r) => setTimeout(r, 300));
    if (nginx.exitCode === null) nginx.kill("SIGKILL");
  }
  await env?.stop();
});

const wile = (args: string[], extraEnv: Record<string, string> = {}) =>
  runWile(args, { home, timeoutMs: 120_000, env: extraEnv });
const deployArgs = (reload = reloadCmd()) => [
  ...["--deploy", "nginx", "--nginx-cert", certPath(), "--nginx-key", keyPath()],
  ...["--nginx-reload", reload, "--nginx-verify", `127.0.0.1:${port}`],
];

describe("deploy nginx", () => {
  const name = "nginx-deploy.example";

  it("issue --deploy nginx: copies, reloads, verifies; nginx serves the new certificate", async () => {
    const r = await wile(issueArgs(env, [name], deployArgs()));
    assert.equal(r.code, 0, dump(r));
    const serial = serialHex(certFiles(home, name).cert);
    assert.equal(readFileSync(certPath(), "utf8"), readFileSync(certFiles(home, name).fullchain, "utf8"));
    assert.equal(readFileSync(keyPath(), "utf8"), readFileSync(certFiles(home, name).privkey, "utf8"));
    assert.ok(
      r.stderr.includes(`nginx on 127.0.0.1:${port} serves the new certificate (serial ${serial})\n`),
      `wile names the serial as openssl does (${serial}):\n${r.stderr}`,
    );
    // Old workers finish their connections after a graceful reload: a new connection may still meet one.
    await eventuallyServes(name, serial);
    const renewal = JSON.parse(readFileSync(certFiles(home, name).renewal, "utf8"));
    assert.deepEqual(
      renewal.deploy.map((d: { kind: string }) => d.kind),
      ["nginx"],
    );
  });

  it("renew --force replays the deploy: nginx serves the newer serial", async () => {
    const before = serialHex(certFiles(home, name).cert);
    const r = await wile(["renew", name, "--force"]);
    assert.equal(r.code, 0, dump(r));
    const after = serialHex(certFiles(home, name).cert);
    assert.notEqual(after, before);
    await eventuallyServes(name, after);
  });

  it("under cron's PATH=/usr/bin:/bin a reload naming nginx finds it in /usr/sbin (issue 9, bug 3)", async () => {
    assert.ok(
      ["/usr/local/sbin", "/usr/sbin", "/sbin"].includes(dirname(nginxBin)),
      `nginx is at ${nginxBin}; this test needs it in an sbin directory, where Debian installs it`,
    );
    const before = serialHex(certFiles(home, name).cert);
    const r = await runWile(["renew", name, "--force"], {
      home,
      timeoutMs: 120_000,
      env: { PATH: "/usr/bin:/bin" },
    });
    assert.equal(r.code, 0, dump(r));
    assert.match(r.stderr, /running nginx -p /);
    const after = serialHex(certFiles(home, name).cert);
    assert.notEqual(after, before);
    await eventuallyServes(name, after);
  });

  it("a failing reload command: exit 1 with its message, the new certificate stays stored", async () => {
    const n = "nginx-reload-fails.example";
    const r = await wile(issueArgs(env, [n], deployArgs("echo nginx: config broken >&2; exit 4")));
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /exit 4/);
    assert.match(r.stderr, /config broken/);
    assert.ok(existsSync(certFiles(home, n).cert), "certificate stored");
    assert.match(readFileSync(certFiles(home, n).cert, "utf8"), /BEGIN CERTIFICATE/);
    assert.ok(existsSync(certFiles(home, n).renewal), "renewal.json stored");
  });

  it("nginx still serving the old certificate (reload `true`): verify fails with the served serial", async () => {
    const n = "nginx-stale.example";
    const servedBefore = served(n);
    // The mismatch is the point: verify need not wait the default 10 s for nginx to switch.
    const r = await wile(issueArgs(env, [n], deployArgs("true")), { WILE_VERIFY_WAIT_MS: "0" });
    assert.equal(r.code, 1, dump(r));
    assert.match(
      r.stderr,
      new RegExp(
        `nginx on 127\\.0\\.0\\.1:${port} still serves serial ${servedBefore} \\(expires \\d{4}-\\d\\d-\\d\\d\\) after reload`,
      ),
    );
    assert.ok(r.ms < 10_000, `WILE_VERIFY_WAIT_MS=0 reached the verify: took ${r.ms} ms`);
    // Put it right: wile deploy NAME again with the real reload.
    const fix = await wile(["deploy", n, ...deployArgs()]);
    assert.equal(fix.code, 0, dump(fix));
    await eventuallyServes(n, serialHex(certFiles(home, n).cert));
  });

  it("an unwritable target fails before any file is changed", async () => {
    const n = "nginx-unwritable.example";
    const certBefore = readFileSync(certPath(), "utf8");
    const keyBefore = readFileSync(keyPath(), "utf8");
    const missing = join(prefix, "no-such-dir", "key.pem");
    const r = await wile(
      issueArgs(
        env,
        [n],
        [
          ...["--deploy", "nginx", "--nginx-cert", certPath(), "--nginx-key", missing],
          ...["--nginx-reload", reloadCmd(), "--nginx-verify", `127.0.0.1:${port}`],
        ],
      ),
    );
    assert.ok(r.code === 1 || r.code === 2, dump(r));
    assert.match(r.stderr, /no-such-dir/);
    assert.match(r.stderr, /does not exist/);
    assert.equal(readFileSync(certPath(), "utf8"), certBefore, "certificate file unchanged");
    assert.equal(readFileSync(keyPath(), "utf8"), keyBefore, "key file unchanged");
  });
});
