/**
 * A throwaway ACME test environment on 127.0.0.1, all on free ports:
 *   - pebble-challtestsrv as Pebble's DNS server, answering every name with 127.0.0.1;
 *   - Pebble (Debian's 2.4.0) with a listener certificate signed by a CA made here with openssl;
 *   - nginx serving a fresh temp webroot for any Host on the port Pebble's VA uses for http-01.
 *
 * A missing binary is an Error naming the Debian package to install, never a skip.
 * Logs of every process are kept in `tmp`; when startup fails the error carries their tails.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { auditInfra, auditTree } from "./secrets-audit";
import { diagnostics } from "./wile";

export interface TestEnvOptions {
  /** Extra PEBBLE_* environment, e.g. { PEBBLE_WFE_NONCEREJECT: "50" }. */
  env?: Record<string, string>;
  /** EAB keys (kid -> base64url HMAC key); sets externalAccountBindingRequired. */
  eab?: Record<string, string>;
  /** certificateValidityPeriod in seconds. */
  validityPeriod?: number;
  /** PEBBLE_ALTERNATE_ROOTS */
  alternateRoots?: number;
  /** PEBBLE_CHAIN_LENGTH */
  chainLength?: number;
  /**
   * "127.0.0.1:PORT" of the DNS server Pebble's VA asks (A/AAAA for http-01, TXT for dns-01),
   * e.g. a BIND9 from test/helpers/bind9.ts; default pebble-challtestsrv, which answers every
   * name with 127.0.0.1.
   */
  dnsServer?: string;
  /**
   * nginx includes `<tmp>/nginx-extra.conf` (made empty) inside `http {}`, for server blocks a test
   * writes once the environment runs (then reloadNginx()): e.g. a pasted stateless http-01 snippet.
   */
  nginxExtra?: boolean;
  /** Pebble's VA fetches http-01 from this port instead of nginx's (wile --standalone --http-port). */
  vaHttpPort?: number;
  /** The port Pebble's VA connects to for tls-alpn-01 (Pebble's `tlsPort`); default a free one, where nothing listens. */
  tlsPort?: number;
}

export interface TestEnv {
  /** https://127.0.0.1:P/dir */
  directoryUrl: string;
  /** PEM file of the throwaway CA that signed Pebble's listener certificate (for --ca-bundle). */
  caBundle: string;
  /** https://127.0.0.1:P (Pebble's management API, same listener CA). */
  managementUrl: string;
  /** nginx listens here, and Pebble's VA fetches http-01 here. */
  httpPort: number;
  /** Pebble's VA connects here for tls-alpn-01 (opts.tlsPort, or a free port nothing listens on). */
  tlsPort: number;
  /** nginx's document root, a fresh temp dir. */
  webroot: string;
  /** Temp dir holding config, certificates and logs of this environment. */
  tmp: string;
  /** Pebble's output: one "POST /<path> -> calling handler()" line per request it receives, among others. */
  pebbleLog: string;
  /** nginx access log: `addr "host" "request" status "user-agent"` per line. */
  nginxAccessLog: string;
  /** "name:<httpPort>:127.0.0.1", for wile's --resolve. */
  resolveArg(name: string): string;
  /** PEM of Pebble's root i (management /roots/<i>). */
  pebbleRoot(i?: number): Promise<string>;
  /** PEM of Pebble's intermediate i (management /intermediates/<i>). */
  pebbleIntermediate(i?: number): Promise<string>;
  /** Parsed JSON from management /cert-status-by-serial/<hex>. */
  certStatus(serialHex: string): Promise<unknown>;
  /** Lines of the nginx access log so far. */
  accessLogLines(): string[];
  /** With opts.nginxExtra: the file nginx includes inside `http {}`. */
  nginxExtraConf: string;
  /**
   * nginx reads its configuration again (SIGHUP); resolves once the old worker has exited, so that
   * every connection after it gets the new configuration.
   */
  reloadNginx(): Promise<void>;
  /**
   * pebble-challtestsrv answers `host` with `address` (another loopback address, e.g. 127.0.0.2)
   * instead of 127.0.0.1, so that Pebble's VA connects there (not with opts.dnsServer).
   */
  addA(host: string, address: string): Promise<void>;
  stop(): Promise<void>;
}

const PACKAGES: Record<string, string> = {
  pebble: "pebble",
  "pebble-challtestsrv": "pebble",
  nginx: "nginx-light",
  openssl: "openssl",
  named: "bind9",
  pdns_server: "pdns-server",
  sqlite3: "sqlite3",
  apache2ctl: "apache2",
};

/** Finds an executable in PATH (plus the sbin dirs a non-root PATH may lack) or throws naming the package. */
export function findBinary(name: string): string {
  const dirs = [
    ...(process.env.PATH ?? "").split(delimiter),
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
    "/usr/bin",
  ];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  const pkg = PACKAGES[name] ?? name;
  throw new Error(
    `${name} not found in PATH: install the Debian package ${pkg} (apt-get install ${pkg}), ` +
      "or run scripts/test.sh as root, which installs everything the tests need",
  );
}

// ---------------------------------------------------------------------------------------------
// Children: tracked globally so that they die with this process whatever happens.

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL");
      } catch {}
    }
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      for (const c of live) {
        try {
          c.kill("SIGKILL");
        } catch {}
      }
      process.kill(process.pid, sig);
    });
  }
}

export interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  exitCode: () => number | null | undefined;
}

export function startProc(
  name: string,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
): Proc {
  installExitHooks();
  const out = openLog(logFile);
  const child = spawn(cmd, args, { env, stdio: ["ignore", out, out] });
  closeSync(out);
  live.add(child);
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (c, s) => {
      live.delete(child);
      code = c ?? (s ? -1 : null);
      resolve(code);
    });
    child.on("error", (err) => {
      live.delete(child);
      writeFileSync(logFile, `\nspawn error: ${err.message}\n`, { flag: "a" });
      code = -1;
      resolve(code);
    });
  });
  return { name, child, logFile, exited, exitCode: () => code };
}

/** A plain fd: the child writes straight into the file, no pipe to drain. */
function openLog(file: string): number {
  return openSync(file, "a");
}

export async function stopProc(p: Proc): Promise<void> {
  if (p.exitCode() !== undefined) return;
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 3000);
  await p.exited;
  clearTimeout(timer);
}

/**
 * stop() for a server of one process run from its own temp dir (BIND9, PowerDNS): stops it once,
 * then removes the dir unless WILE_KEEP_TESTENV is set.
 */
export function stopOnce(p: Proc, tmp: string): () => Promise<void> {
  let stopped = false;
  return async () => {
    if (stopped) return;
    stopped = true;
    await stopProc(p);
    if (!process.env.WILE_KEEP_TESTENV) rmSync(tmp, { recursive: true, force: true });
  };
}

export function tail(file: string, lines = 30): string {
  try {
    const text = readFileSync(file, "utf8").trimEnd().split("\n");
    return text.slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

// ---------------------------------------------------------------------------------------------
// Ports

/** A TCP port that was free on 127.0.0.1 a moment ago (and, with udp, free for UDP too). */
export async function freePort(udp = false): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
      });
    });
    if (!udp) return port;
    const ok = await new Promise<boolean>((resolve) => {
      const s = createSocket("udp4");
      s.once("error", () => resolve(false));
      s.bind(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("could not find a free port on 127.0.0.1");
}

async function distinctPorts(n: number, udpFirst: boolean, avoid: number[] = []): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePort(udpFirst && ports.length === 0);
    if (!ports.includes(p) && !avoid.includes(p)) ports.push(p);
  }
  return ports;
}

// ---------------------------------------------------------------------------------------------
// Small HTTP helpers

export function httpsGet(
  url: string,
  ca: string | Buffer,
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on("error", reject);
    req.end();
  });
}

export function httpGet(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on("error", reject);
    req.end();
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(1000);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
    s.connect(port, "127.0.0.1");
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class StartError extends Error {
  constructor(
    message: string,
    readonly bindClash: boolean,
  ) {
    super(message);
  }
}

/** Polls `ready` until it resolves true, the process dies, or the deadline passes. */
export async function waitReady(
  p: Proc,
  what: string,
  ready: () => Promise<boolean>,
  extraLogs: string[] = [],
  timeoutMs = 15000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = "";
  while (Date.now() < deadline) {
    if (p.exitCode() !== undefined) break;
    try {
      if (await ready()) return;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    await sleep(50);
  }
  const logs = [p.logFile, ...extraLogs].map((f) => `--- ${f}:\n${tail(f)}`).join("\n");
  const died = p.exitCode() !== undefined ? `exited with ${p.exitCode()}` : `not ready after ${timeoutMs} ms`;
  const clash = /address already in use/i.test(logs);
  throw new StartError(
    `${p.name} ${died} (${what}${lastErr ? `; last error: ${lastErr}` : ""}).\n${logs}`,
    clash,
  );
}

// ---------------------------------------------------------------------------------------------

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync(findBinary("openssl"), args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args.join(" ")} failed: ${err.stderr?.toString() ?? err.message}`);
  }
}

/** Makes ca.pem (the bundle to trust) and listener cert.pem/key.pem (SAN IP:127.0.0.1, DNS:localhost). */
function makeListenerCerts(dir: string): { ca: string; cert: string; key: string } {
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "7",
      "-subj",
      "/CN=wile test listener CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  openssl(
    [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "key.pem",
      "-out",
      "listener.csr",
      "-subj",
      "/CN=localhost",
    ],
    dir,
  );
  writeFileSync(
    join(dir, "listener.ext"),
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "listener.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "cert.pem",
      "-days",
      "7",
      "-extfile",
      "listener.ext",
    ],
    dir,
  );
  return { ca: join(dir, "ca.pem"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
}

/** nginx `*_temp_path` directives (for an http block) that put its temp dirs in `tmp`. */
export function nginxTempPaths(tmp: string, nginxBin: string): string {
  // nginx -V prints its configure arguments on stderr. Only ask for the temp paths of compiled modules.
  const r = spawnSync(nginxBin, ["-V"], { encoding: "utf8" });
  const built = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const temp = ["client_body"];
  for (const m of ["proxy", "fastcgi", "uwsgi", "scgi"]) {
    if (!built.includes(`--without-http_${m}_module`)) temp.push(m);
  }
  return temp.map((t) => `  ${t}_temp_path ${tmp}/nginx-${t}-temp;`).join("\n");
}

function nginxConfig(
  tmp: string,
  webroot: string,
  port: number,
  nginxBin: string,
  extra: string | undefined,
): string {
  const user = process.getuid?.() === 0 ? "user root root;\n" : "";
  return `# generated by test/helpers/testenv.ts
daemon off;
master_process on;
worker_processes 1;
${user}pid ${tmp}/nginx.pid;
error_log ${tmp}/nginx-error.log info;
events { worker_connections 128; }
http {
  log_format wile '$remote_addr "$host" "$request" $status "$http_user_agent"';
  access_log ${tmp}/nginx-access.log wile;
${nginxTempPaths(tmp, nginxBin)}
  default_type text/plain;
  server_tokens off;
  server {
    listen 127.0.0.1:${port} default_server;
    server_name _;
    root ${webroot};
    location / { try_files $uri =404; }
  }
${extra ? `  include ${extra};\n` : ""}}
`;
}

// ---------------------------------------------------------------------------------------------

export async function startTestEnv(opts: TestEnvOptions = {}): Promise<TestEnv> {
  // Fail fast, naming the package, before any temp dir is made.
  const bins = {
    pebble: findBinary("pebble"),
    challtestsrv: findBinary("pebble-challtestsrv"),
    nginx: findBinary("nginx"),
  };
  findBinary("openssl");
  return retryOnBindClash("test environment", () => startOnce(opts, bins));
}

/** Runs `start` again (up to 4 times) while it fails with a StartError for a port taken meanwhile. */
export async function retryOnBindClash<T>(what: string, start: () => Promise<T>): Promise<T> {
  let lastErr: Error | undefined;
  for (let attempt = 1; attempt <= 4; attempt++) {
    try {
      return await start();
    } catch (e) {
      lastErr = e as Error;
      if (!(e instanceof StartError && e.bindClash)) throw e;
    }
  }
  throw lastErr ?? new Error(`${what} did not start`);
}

async function startOnce(
  opts: TestEnvOptions,
  bins: { pebble: string; challtestsrv: string; nginx: string },
): Promise<TestEnv> {
  const tmp = mkdtempSync(join(tmpdir(), "wile-testenv-"));
  chmodSync(tmp, 0o755);
  auditInfra(tmp);
  const webroot = join(tmp, "webroot");
  mkdirSync(webroot, { mode: 0o755 });
  chmodSync(webroot, 0o755);
  const procs: Proc[] = [];
  const stopAll = async () => {
    await Promise.all(procs.map(stopProc));
  };

  try {
    const [dnsPort, dnsMgmtPort, httpPort, freeTlsPort, acmePort, mgmtPort] = (await distinctPorts(
      6,
      true,
      opts.tlsPort ? [opts.tlsPort] : [],
    )) as [number, number, number, number, number, number];
    const tlsPort = opts.tlsPort ?? freeTlsPort;
    const certs = makeListenerCerts(tmp);
    const ca = readFileSync(certs.ca);
    const baseEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: tmp,
      LANG: "C.UTF-8",
    };

    // 1. DNS: every name -> 127.0.0.1, nothing else listening.
    const cts = startProc(
      "pebble-challtestsrv",
      bins.challtestsrv,
      [
        "-defaultIPv4",
        "127.0.0.1",
        "-defaultIPv6",
        "",
        "-dns01",
        `127.0.0.1:${dnsPort}`,
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-management",
        `127.0.0.1:${dnsMgmtPort}`,
      ],
      baseEnv,
      join(tmp, "challtestsrv.log"),
    );
    procs.push(cts);

    // 2. nginx serving the webroot on httpPort.
    const nginxConf = join(tmp, "nginx.conf");
    const nginxExtraConf = join(tmp, "nginx-extra.conf");
    if (opts.nginxExtra) writeFileSync(nginxExtraConf, "");
    writeFileSync(
      nginxConf,
      nginxConfig(tmp, webroot, httpPort, bins.nginx, opts.nginxExtra ? nginxExtraConf : undefined),
    );
    writeFileSync(join(tmp, "nginx-access.log"), "");
    const nginx = startProc(
      "nginx",
      bins.nginx,
      ["-c", nginxConf, "-p", tmp, "-e", join(tmp, "nginx-error.log")],
      baseEnv,
      join(tmp, "nginx.log"),
    );
    procs.push(nginx);

    // 3. Pebble.
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: certs.cert,
        privateKey: certs.key,
        httpPort: opts.vaHttpPort ?? httpPort,
        tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: opts.eab !== undefined,
        ...(opts.eab ? { externalAccountMACKeys: opts.eab } : {}),
        ...(opts.validityPeriod !== undefined ? { certificateValidityPeriod: opts.validityPeriod } : {}),
      },
    };
    const configFile = join(tmp, "pebble-config.json");
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
    const pebbleEnv: NodeJS.ProcessEnv = {
      ...baseEnv,
      PEBBLE_VA_NOSLEEP: "1",
      ...(opts.alternateRoots !== undefined ? { PEBBLE_ALTERNATE_ROOTS: String(opts.alternateRoots) } : {}),
      ...(opts.chainLength !== undefined ? { PEBBLE_CHAIN_LENGTH: String(opts.chainLength) } : {}),
      ...opts.env,
    };
    const pebble = startProc(
      "pebble",
      bins.pebble,
      ["-config", configFile, "-dnsserver", opts.dnsServer ?? `127.0.0.1:${dnsPort}`],
      pebbleEnv,
      join(tmp, "pebble.log"),
    );
    procs.push(pebble);

    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    const managementUrl = `https://127.0.0.1:${mgmtPort}`;

    await waitReady(
      cts,
      `DNS on 127.0.0.1:${dnsPort}`,
      async () => (await tcpOpen(dnsPort)) && (await tcpOpen(dnsMgmtPort)),
    );
    await waitReady(
      nginx,
      `http://127.0.0.1:${httpPort}/`,
      async () => {
        const r = await httpGet(
          `http://127.0.0.1:${httpPort}/.wile-testenv-probe`,
          { "User-Agent": "wile-testenv" },
          1000,
        );
        return r.status === 404;
      },
      [join(tmp, "nginx-error.log")],
    );
    await waitReady(pebble, directoryUrl, async () => {
      const r = await httpsGet(directoryUrl, ca, 1000);
      return r.status === 200 && r.body.includes("newNonce");
    });
    await waitReady(pebble, `${managementUrl}/roots/0`, async () => {
      const r = await httpsGet(`${managementUrl}/roots/0`, ca, 1000);
      return r.status === 200 && r.body.includes("BEGIN CERTIFICATE");
    });

    const mgmt = async (path: string): Promise<string> => {
      const r = await httpsGet(`${managementUrl}${path}`, ca);
      if (r.status !== 200) throw new Error(`Pebble management ${path}: HTTP ${r.status}: ${r.body}`);
      return r.body;
    };
    let stopped = false;
    const accessLog = join(tmp, "nginx-access.log");
    diagnostics.pebbleLog = join(tmp, "pebble.log");
    return {
      directoryUrl,
      caBundle: certs.ca,
      managementUrl,
      httpPort,
      tlsPort,
      webroot,
      tmp,
      pebbleLog: join(tmp, "pebble.log"),
      nginxAccessLog: accessLog,
      resolveArg: (name: string) => `${name}:${httpPort}:127.0.0.1`,
      pebbleRoot: (i = 0) => mgmt(`/roots/${i}`),
      pebbleIntermediate: (i = 0) => mgmt(`/intermediates/${i}`),
      certStatus: async (serialHex: string) =>
        JSON.parse(await mgmt(`/cert-status-by-serial/${serialHex.replace(/:/g, "").toLowerCase()}`)),
      addA: async (host: string, address: string) => {
        const r = await fetch(`http://127.0.0.1:${dnsMgmtPort}/add-a`, {
          method: "POST",
          body: JSON.stringify({ host: `${host}.`, addresses: [address] }),
        });
        if (r.status !== 200)
          throw new Error(`challtestsrv add-a ${host}: HTTP ${r.status}: ${await r.text()}`);
      },
      accessLogLines: () =>
        readFileSync(accessLog, "utf8")
          .split("\n")
          .filter((l) => l.length > 0),
      nginxExtraConf,
      reloadNginx: async () => {
        const errorLog = join(tmp, "nginx-error.log");
        const exits = () => (readFileSync(errorLog, "utf8").match(/worker process \d+ exited/g) ?? []).length;
        const before = exits();
        nginx.child.kill("SIGHUP");
        await waitReady(nginx, "nginx reloading (its old worker exiting)", async () => exits() > before, [
          errorLog,
        ]);
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopAll();
        auditTree(webroot);
        if (!process.env.WILE_KEEP_TESTENV) rmSync(tmp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await stopAll();
    // Keep tmp for inspection: the error message points into it.
    throw e;
  }
}
