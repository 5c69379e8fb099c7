/**
 * Mail servers for the dovecot/postfix deploy tests:
 *
 * - For unit tests: stand-in `doveconf`, `doveadm`, `postconf`, `postfix` scripts in a temp bin
 *   dir (put first on PATH) that record their arguments and answer from files, and a DeployContext
 *   made from a throwaway self-signed certificate.
 * - For e2e tests: a real Dovecot (imapd, `dovecot -c CONF -F` in the foreground) and a real Postfix
 *   (`postfix -c DIR start`, its own main.cf/master.cf, queue and data directories) on 127.0.0.1 and
 *   free ports, everything (state, logs, pid files, certificates) in a temp dir. Both need root
 *   (Dovecot's login processes switch to dovenull, Postfix's master to postfix).
 *
 * A missing service binary skips the e2e tests outside CI and fails them under CI (skipUnlessAvailable;
 * scripts/test.sh installs dovecot-imapd and postfix).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  accessSync,
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCertificate } from "../../src/crypto/x509";
import type { DeployContext } from "../../src/deploy/target";
import { silentLogger } from "../../src/util/log";
import { serialHex } from "./certs";
import { freePort, tail } from "./testenv";

// ---------------------------------------------------------------------------------------------
// Unit-test helpers

/** A self-signed EC P-256 certificate for `name` in `dir`: key and cert PEM, serial (as openssl prints it). */
export function selfSigned(
  dir: string,
  name: string,
  curve = "P-256",
): { keyPem: string; certPem: string; keyFile: string; certFile: string; serial: string } {
  const keyFile = join(dir, `${name}-${curve}.key`);
  const certFile = join(dir, `${name}-${curve}.crt`);
  const keyArgs =
    curve === "rsa" ? ["-newkey", "rsa:2048"] : ["-newkey", "ec", "-pkeyopt", `ec_paramgen_curve:${curve}`];
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      ...keyArgs,
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { stdio: "ignore" },
  );
  const certPem = readFileSync(certFile, "utf8");
  return {
    keyPem: readFileSync(keyFile, "utf8"),
    certPem,
    keyFile,
    certFile,
    serial: serialHex(certFile),
  };
}

/** A DeployContext for `name` with a fresh self-signed certificate (chain = a second one). */
export function testContext(dir: string, name: string): DeployContext {
  const leaf = selfSigned(dir, name);
  const issuer = selfSigned(dir, `issuer-${name}`);
  const info = parseCertificate(leaf.certPem);
  const certs = join(dir, "certs", name);
  return {
    name,
    identifiers: [{ type: "dns", value: name }],
    serverName: name,
    paths: {
      dir: certs,
      privkey: join(certs, "privkey.pem"),
      cert: join(certs, "cert.pem"),
      chain: join(certs, "chain.pem"),
      fullchain: join(certs, "fullchain.pem"),
    },
    files: {
      privkeyPem: leaf.keyPem,
      certPem: leaf.certPem,
      chainPem: issuer.certPem,
      fullchainPem: leaf.certPem + issuer.certPem,
    },
    serialHex: info.serialHex,
    notAfter: info.notAfter,
    leafDer: info.der,
    home: dir,
    logger: silentLogger,
    // verify does not wait: a test service serves the new certificate already, or never will.
    verifyWaitMs: 0,
  };
}

export interface Stubs {
  /** The directory to put first on PATH. */
  bin: string;
  /** Every call so far, as "<program> <args joined by spaces>". */
  calls(): string[];
  /** What `<program> ... <last argument>` prints on stdout (the last argument is the setting name). */
  answer(program: string, lastArg: string, stdout: string): void;
  /** Makes every call of `program` print `stderr` and exit `code`. */
  fail(program: string, stderr: string, code?: number): void;
  reset(): void;
}

/**
 * Stand-ins for `programs` in `dir`/bin: each appends its name and arguments to calls.log, exits
 * with the code in <name>.fail (printing its text) if that file exists, else prints
 * <name>.<last argument> if that exists, and exits 0.
 */
export function installStubs(dir: string, programs: string[]): Stubs {
  const bin = join(dir, "bin");
  const data = join(dir, "stub-data");
  mkdirSync(bin, { recursive: true });
  mkdirSync(data, { recursive: true });
  const log = join(data, "calls.log");
  for (const p of programs) {
    writeFileSync(
      join(bin, p),
      `#!/bin/sh
echo "${p} $*" >> '${log}'
last=""
for a in "$@"; do last="$a"; done
if [ -f '${data}/${p}.fail' ]; then
  cat '${data}/${p}.fail' >&2
  exit "$(cat '${data}/${p}.code' 2>/dev/null || echo 1)"
fi
if [ -f "${data}/${p}.$last" ]; then cat "${data}/${p}.$last"; fi
exit 0
`,
      { mode: 0o755 },
    );
  }
  return {
    bin,
    calls: () =>
      existsSync(log)
        ? readFileSync(log, "utf8")
            .split("\n")
            .filter((l) => l !== "")
        : [],
    answer: (program, lastArg, stdout) => writeFileSync(join(data, `${program}.${lastArg}`), stdout),
    fail: (program, stderr, code = 1) => {
      writeFileSync(join(data, `${program}.fail`), stderr);
      writeFileSync(join(data, `${program}.code`), String(code));
    },
    reset: () => {
      rmSync(data, { recursive: true, force: true });
      mkdirSync(data, { recursive: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Real services

const DOVECOT_PACKAGE = "dovecot-imapd";
const POSTFIX_PACKAGE = "postfix";

function whichSbin(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin", "/sbin"]) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {}
  }
  return undefined;
}

/** Why the real mail servers cannot run here (undefined: they can), for skipUnlessAvailable. */
export function mailServicesUnavailable(): string | undefined {
  const missing: string[] = [];
  if (!whichSbin("dovecot") || !whichSbin("doveconf") || !whichSbin("doveadm")) missing.push(DOVECOT_PACKAGE);
  if (!whichSbin("postfix") || !whichSbin("postconf")) missing.push(POSTFIX_PACKAGE);
  let reason: string | undefined;
  if (missing.length > 0) {
    reason = `missing Debian packages ${missing.join(", ")} (apt-get install ${missing.join(" ")}, or run scripts/test.sh as root)`;
  } else if (process.getuid?.() !== 0) {
    reason = "Dovecot and Postfix need root to start (their processes switch users)";
  }
  return reason && `mail services cannot run: ${reason}`;
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

async function waitPorts(ports: number[], what: string, logs: string[], dead: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (dead()) break;
    const open = await Promise.all(ports.map(tcpOpen));
    if (open.every(Boolean)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const detail = logs.map((f) => `--- ${f}:\n${tail(f)}`).join("\n");
  throw new Error(`${what} did not listen on ${ports.join(", ")}${dead() ? " (it exited)" : ""}\n${detail}`);
}

/** A temp dir others (dovenull, postfix) can traverse. */
function serviceDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export interface Dovecot {
  dir: string;
  /** Its dovecot.conf (for --dovecot-config). */
  config: string;
  /** ssl_cert = <certFile, ssl_key = <keyFile. */
  certFile: string;
  keyFile: string;
  imapsPort: number;
  /** Plain IMAP with STARTTLS. */
  imapPort: number;
  placeholderSerial: string;
  logFile: string;
  stop(): Promise<void>;
}

/** A real Dovecot (imap only, ssl = required) on 127.0.0.1 and two free ports, in the foreground. */
export async function startDovecot(): Promise<Dovecot> {
  const dovecot = whichSbin("dovecot");
  if (!dovecot) throw new Error(`dovecot not found: apt-get install ${DOVECOT_PACKAGE}`);
  const dir = serviceDir("wile-dovecot-");
  const tls = join(dir, "tls");
  mkdirSync(tls, { mode: 0o700 });
  const placeholder = selfSigned(tls, "placeholder.invalid");
  const certFile = join(tls, "dovecot.pem");
  const keyFile = join(tls, "dovecot.key");
  writeFileSync(certFile, placeholder.certPem, { mode: 0o644 });
  writeFileSync(keyFile, placeholder.keyPem, { mode: 0o600 });
  const [imapsPort, imapPort] = [await freePort(), await freePort()];
  const config = join(dir, "dovecot.conf");
  const logFile = join(dir, "dovecot.log");
  writeFileSync(
    config,
    `# generated by test/helpers/mail-services.ts
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${logFile}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <${certFile}
ssl_key = <${keyFile}
default_login_user = dovenull
default_internal_user = dovecot
passdb {
  driver = static
  args = password=unused-${Math.random().toString(36).slice(2)}
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${dir}/home/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${imapsPort}
    ssl = yes
  }
}
`,
  );
  const outFile = join(dir, "dovecot.out");
  const out = openSync(outFile, "a");
  const child: ChildProcess = spawn(dovecot, ["-c", config, "-F"], { stdio: ["ignore", out, out] });
  closeSync(out);
  let exited = false;
  const done = new Promise<void>((resolve) => {
    child.on("exit", () => {
      exited = true;
      resolve();
    });
    child.on("error", (e) => {
      appendFileSync(outFile, `spawn error: ${e.message}\n`);
      exited = true;
      resolve();
    });
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  const stop = async () => {
    process.off("exit", killOnExit);
    if (!exited) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(t);
    }
    if (!process.env.WILE_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitPorts([imapsPort, imapPort], "dovecot", [outFile, logFile], () => exited);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    dir,
    config,
    certFile,
    keyFile,
    imapsPort,
    imapPort,
    placeholderSerial: placeholder.serial,
    logFile,
    stop,
  };
}

export interface Postfix {
  dir: string;
  /** Its configuration directory (for --postfix-config). */
  configDir: string;
  /** smtpd_tls_chain_files = chainFile (key, then certificate). */
  chainFile: string;
  smtpPort: number;
  placeholderSerial: string;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * A real Postfix on 127.0.0.1 and a free port (smtpd with STARTTLS, smtpd_tls_security_level = may),
 * its own configuration directory, queue and data directories and log file.
 */
export async function startPostfix(): Promise<Postfix> {
  const postfix = whichSbin("postfix");
  if (!postfix) throw new Error(`postfix not found: apt-get install ${POSTFIX_PACKAGE}`);
  const dir = serviceDir("wile-postfix-");
  const configDir = join(dir, "conf");
  const queue = join(dir, "queue");
  const data = join(dir, "data");
  mkdirSync(configDir, { mode: 0o755 });
  mkdirSync(queue, { mode: 0o755 });
  mkdirSync(data, { mode: 0o700 });
  const ids = execFileSync("id", ["-u", "postfix"], { encoding: "utf8" }).trim();
  chownSync(data, Number(ids), -1);
  const placeholder = selfSigned(dir, "placeholder.invalid");
  const chainFile = join(configDir, "chain.pem");
  writeFileSync(chainFile, placeholder.keyPem + placeholder.certPem, { mode: 0o600 });
  const smtpPort = await freePort();
  const logFile = join(dir, "postfix.log");
  writeFileSync(
    join(configDir, "main.cf"),
    `# generated by test/helpers/mail-services.ts
compatibility_level = 3.6
queue_directory = ${queue}
data_directory = ${data}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = wile-test.invalid
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
smtpd_relay_restrictions = reject
smtpd_tls_security_level = may
smtpd_tls_chain_files = ${chainFile}
maillog_file_prefixes = ${dir}
maillog_file = ${logFile}
`,
  );
  writeFileSync(
    join(configDir, "master.cf"),
    `# generated by test/helpers/mail-services.ts
127.0.0.1:${smtpPort} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
scache    unix  - - n - 1 scache
anvil     unix  - - n - 1 anvil
postlog   unix-dgram n - n - 1 postlogd
`,
  );
  const pidFile = join(queue, "pid", "master.pid");
  const masterPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const alive = (pid: number | undefined) => {
    if (pid === undefined) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const killOnExit = () => {
    const pid = masterPid();
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  };
  process.on("exit", killOnExit);
  const ctl = (cmd: string) =>
    execFileSync(postfix, ["-c", configDir, cmd], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 30_000,
    });
  const stop = async () => {
    process.off("exit", killOnExit);
    const pid = masterPid();
    try {
      ctl("stop");
    } catch {}
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) killOnExit();
    if (!process.env.WILE_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  };
  try {
    // check creates the queue's subdirectories (owned by postfix) the first time.
    ctl("check");
    ctl("start");
    await waitPorts([smtpPort], "postfix", [logFile], () => false);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    await stop().catch(() => {});
    throw new Error(
      `postfix did not start: ${err.stderr ?? ""}${err.message}\n--- ${logFile}:\n${tail(logFile)}`,
    );
  }
  return { dir, configDir, chainFile, smtpPort, placeholderSerial: placeholder.serial, logFile, stop };
}
