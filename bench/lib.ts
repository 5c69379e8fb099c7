/** Shared pieces of bench/full.ts: statistics, timed child processes (GNU time), certificate checks. */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certText, sanNames } from "../test/helpers/certs";

export const GNU_TIME = "/usr/bin/time";

export const median = (xs: number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
export const min = (xs: number[]): number => (xs.length ? Math.min(...xs) : Number.NaN);
export const max = (xs: number[]): number => (xs.length ? Math.max(...xs) : Number.NaN);
export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

export interface Cmd {
  cmd: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

export interface Timed {
  code: number;
  /** Wall time seen by the harness, seconds. */
  wallS: number;
  /** user + sys of the process and every child it waited for (GNU time %U %S). */
  cpuS: number;
  /** Peak RSS of the largest single process in the tree (GNU time %M), MB. */
  rssMB: number;
  stdout: string;
  stderr: string;
}

const timeDir = mkdtempSync(join(tmpdir(), "wile-bench-time-"));
process.on("exit", () => rmSync(timeDir, { recursive: true, force: true }));
let seq = 0;

/** Runs c under GNU time; rejects only when it cannot be started. */
export function timed(c: Cmd, timeoutMs = 180_000): Promise<Timed> {
  const file = join(timeDir, `t${seq++}.txt`);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(GNU_TIME, ["-f", "%U %S %M", "-o", file, c.cmd, ...c.args], {
      env: c.env,
      cwd: c.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      let cpuS = Number.NaN;
      let rssMB = Number.NaN;
      try {
        const [u, s, m] = readFileSync(file, "utf8").trim().split(/\s+/).slice(-3).map(Number) as [
          number,
          number,
          number,
        ];
        cpuS = u + s;
        rssMB = m / 1024;
      } catch {}
      resolve({
        code: code ?? -1,
        wallS,
        cpuS,
        rssMB,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
  });
}

export function describe(c: Cmd): string {
  return [c.cmd, ...c.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(" ");
}

/** Throws unless certFile exists, names exactly `name` and carries an EC P-256 key. */
export function checkCert(certFile: string, name: string, what: string): void {
  if (!existsSync(certFile)) throw new Error(`${what}: exited 0 but ${certFile} is missing`);
  const sans = sanNames(certFile);
  if (sans.length !== 1 || sans[0] !== name) {
    throw new Error(`${what}: ${certFile} names ${sans.join(", ") || "nothing"}, not ${name}`);
  }
  const text = certText(certFile);
  if (!/ASN1 OID: prime256v1|NIST CURVE: P-256/.test(text)) {
    throw new Error(`${what}: ${certFile} does not hold an EC P-256 key`);
  }
}

/** Runs `fn` over items, at most `n` at a time. */
export async function pool<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
