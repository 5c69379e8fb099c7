/** Shared bits of the e2e suite: argv builders and log readers over a running TestEnv. */
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import type { TestEnv } from "./testenv";

/**
 * argv for `wile issue` of names against env, webroot = env.webroot, one --resolve per name so that
 * wile's preflight reaches nginx. With --no-preflight in extra there is no --resolve (it would only
 * matter to the preflight).
 */
export function issueArgs(
  env: TestEnv,
  names: string[],
  extra: string[] = [],
  webroot = env.webroot,
): string[] {
  const args = ["issue"];
  for (const n of names) args.push("-d", n);
  args.push("-w", webroot, "--server", env.directoryUrl, "--ca-bundle", env.caBundle);
  if (!extra.includes("--no-preflight")) for (const n of names) args.push("--resolve", env.resolveArg(n));
  return [...args, ...extra];
}

export function certDir(home: string, name: string): string {
  return join(home, "certs", name);
}

export function certFiles(home: string, name: string) {
  const d = certDir(home, name);
  return {
    dir: d,
    privkey: join(d, "privkey.pem"),
    cert: join(d, "cert.pem"),
    chain: join(d, "chain.pem"),
    fullchain: join(d, "fullchain.pem"),
    renewal: join(d, "renewal.json"),
  };
}

/** Bytes at the stable paths (following symlinks), for before/after comparisons. */
export function snapshot(home: string, name: string): Record<string, string> {
  const f = certFiles(home, name);
  const out: Record<string, string> = {};
  for (const k of ["privkey", "cert", "chain", "fullchain"] as const) {
    out[k] = existsSync(f[k]) ? readFileSync(f[k], "utf8") : "(missing)";
  }
  return out;
}

/** Pebble's validation authority identifies itself as LetsEncrypt-Pebble-VA. */
export const PEBBLE_VA_UA = /Pebble-VA/i;

export interface AccessLine {
  addr: string;
  host: string;
  request: string;
  status: number;
  ua: string;
  raw: string;
}

/** nginx access log lines (format from testenv.ts), parsed; optionally only those for host. */
export function accessLog(env: TestEnv, host?: string): AccessLine[] {
  const re = /^(\S+) "([^"]*)" "([^"]*)" (\d+) "([^"]*)"$/;
  const out: AccessLine[] = [];
  for (const raw of env.accessLogLines()) {
    const m = re.exec(raw);
    if (!m) continue;
    const line = {
      addr: m[1] ?? "",
      host: m[2] ?? "",
      request: m[3] ?? "",
      status: Number(m[4]),
      ua: m[5] ?? "",
      raw,
    };
    if (host === undefined || line.host.toLowerCase() === host.toLowerCase()) out.push(line);
  }
  return out;
}

/** http-01 fetches of host made by Pebble's VA. */
export function pebbleFetches(env: TestEnv, host: string): AccessLine[] {
  return accessLog(env, host).filter(
    (l) => PEBBLE_VA_UA.test(l.ua) && l.request.includes("/.well-known/acme-challenge/"),
  );
}

/** http-01 fetches of host made by anything but Pebble's VA (i.e. wile's preflight). */
export function otherFetches(env: TestEnv, host: string): AccessLine[] {
  return accessLog(env, host).filter(
    (l) => !PEBBLE_VA_UA.test(l.ua) && l.request.includes("/.well-known/acme-challenge/"),
  );
}

/** A TCP listener that counts connections and drops them: a --server that must never be contacted. */
export async function connectionCounter(): Promise<{
  url: string;
  count: () => number;
  close: () => Promise<void>;
}> {
  let n = 0;
  const server: Server = createServer((sock) => {
    n++;
    sock.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `https://127.0.0.1:${port}/dir`,
    count: () => n,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** No stack trace in operator-facing output (design.md: only with -v). */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+[(:]\d+/m.test(text);
}
