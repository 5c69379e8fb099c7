/**
 * A throwaway HAProxy on 127.0.0.1 and a free port, for the haproxy deploy tests: config, runtime
 * API socket (`stats socket <tmp>/admin.sock level admin`) and a placeholder self-signed
 * certificate (`<tmp>/site.pem`, key first then certificate) in a fresh temp dir; one frontend
 * `bind 127.0.0.1:<port> ssl crt <tmp>/site.pem` answering every request with 200. Runs in the
 * foreground (`haproxy -f cfg -db`) as a child of the test process.
 *
 * A missing haproxy is an Error naming the Debian package (scripts/test.sh installs it), never a
 * skip; as root it is installed on the spot.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serialHex } from "./certs";
import { freePort, tail } from "./testenv";
import { repoRoot } from "./wile";

export const HAPROXY = "/usr/sbin/haproxy";

export interface Haproxy {
  /** The TLS frontend's port on 127.0.0.1. */
  port: number;
  /** The runtime API socket (level admin). */
  socket: string;
  /** The crt file haproxy loaded (a placeholder self-signed certificate at first). */
  pemPath: string;
  /** Serial of the placeholder, as openssl prints it. */
  placeholderSerial: string;
  tmp: string;
  logFile: string;
  /** The haproxy process started here: a test checks it is still alive (no restart happened). */
  pid: number;
  stop(): Promise<void>;
}

export function ensureHaproxy(): void {
  if (existsSync(HAPROXY)) return;
  const hint = "install the Debian package haproxy (apt-get install haproxy), or run scripts/test.sh as root";
  if (process.getuid?.() !== 0) throw new Error(`haproxy is missing: ${hint}`);
  const r = spawnSync(
    "bash",
    ["-c", '. scripts/debian-packages.sh && ensure_debian_packages "$@"', "bash", "haproxy"],
    {
      cwd: repoRoot,
      encoding: "utf8",
      timeout: 600_000,
    },
  );
  if (r.status !== 0 || !existsSync(HAPROXY)) {
    throw new Error(`could not install haproxy: ${(r.stderr || r.stdout || "").trim()}; ${hint}`);
  }
}

/** A self-signed EC certificate for `name` (serial as openssl's -set_serial takes it): its PEM (key first) and serial. */
export function selfSignedPem(dir: string, name: string, serial?: string): { pem: string; serial: string } {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      crt,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      ...(serial === undefined ? [] : ["-set_serial", serial]),
    ],
    { stdio: "pipe" },
  );
  const pem = readFileSync(key, "utf8") + readFileSync(crt, "utf8");
  const printed = serialHex(crt);
  rmSync(key);
  rmSync(crt);
  return { pem, serial: printed };
}

/** Sends one runtime API command and returns the whole answer (haproxy closes after it). */
export function haproxyCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    const chunks: Buffer[] = [];
    s.setTimeout(5000, () => s.destroy(new Error(`timeout on ${socket}`)));
    s.on("connect", () => s.write(`${command}\n`));
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", reject);
    s.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

export async function startHaproxy(): Promise<Haproxy> {
  ensureHaproxy();
  const tmp = mkdtempSync(join(tmpdir(), "wile-haproxy-"));
  chmodSync(tmp, 0o755);
  const socket = join(tmp, "admin.sock");
  const pemPath = join(tmp, "site.pem");
  // A serial with a leading 0 nibble, which openssl and HAProxy print and a normalizer would drop.
  const placeholder = selfSignedPem(tmp, "placeholder.invalid", "0x0A1B2C3D");
  writeFileSync(pemPath, placeholder.pem, { mode: 0o600 });
  const cfg = join(tmp, "haproxy.cfg");
  const logFile = join(tmp, "haproxy.log");
  let lastErr: Error | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    writeFileSync(
      cfg,
      [
        "global",
        `  stats socket ${socket} mode 600 level admin`,
        "  stats timeout 30s",
        "",
        "defaults",
        "  mode http",
        "  timeout connect 5s",
        "  timeout client 10s",
        "  timeout server 10s",
        "",
        "frontend tls",
        `  bind 127.0.0.1:${port} ssl crt ${pemPath}`,
        "  http-request return status 200 content-type text/plain string ok",
        "",
      ].join("\n"),
    );
    writeFileSync(logFile, "");
    const out = openSync(logFile, "a");
    const child = spawn(HAPROXY, ["-f", cfg, "-db"], { stdio: ["ignore", out, out], cwd: tmp });
    closeSync(out);
    let exited = false;
    const exitedP = new Promise<void>((resolve) => {
      child.on("exit", () => {
        exited = true;
        resolve();
      });
      child.on("error", () => {
        exited = true;
        resolve();
      });
    });
    const killOnExit = () => child.kill("SIGKILL");
    process.on("exit", killOnExit);
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      if (existsSync(socket)) {
        const answer = await haproxyCommand(socket, "show ssl cert").catch(() => "");
        if (answer.includes(pemPath)) {
          ready = true;
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (ready) {
      return {
        port,
        socket,
        pemPath,
        placeholderSerial: placeholder.serial,
        tmp,
        logFile,
        pid: child.pid ?? 0,
        stop: async () => {
          if (!exited) {
            child.kill("SIGTERM");
            const t = setTimeout(() => child.kill("SIGKILL"), 3000);
            await exitedP;
            clearTimeout(t);
          }
          process.off("exit", killOnExit);
          if (!process.env.WILE_KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
        },
      };
    }
    child.kill("SIGKILL");
    await exitedP;
    process.off("exit", killOnExit);
    const log = tail(logFile);
    lastErr = new Error(`haproxy did not start on 127.0.0.1:${port}:\n${log}`);
    if (!/cannot bind|Address already in use/i.test(log)) break;
  }
  rmSync(tmp, { recursive: true, force: true });
  throw lastErr ?? new Error("haproxy did not start");
}
