/**
 * A throwaway PowerDNS Authoritative Server (Debian's pdns-server with pdns-backend-sqlite3) on
 * 127.0.0.1, run in the foreground as the current user from its own temp directory:
 *
 *     <tmp>/pdns.conf     launch=gsqlite3, DNS on one free port (UDP+TCP), the HTTP API on another
 *     <tmp>/pdns.sqlite3  a fresh database made with sqlite3 from the schema the package ships
 *     <tmp>/pdns.log      pdns_server's output, quoted when start fails
 *
 * The zones are created through the real HTTP API (POST /zones) with SOA, NS ns1.<zone> and
 * A 127.0.0.1 for the apex, ns1 and `*` (like test/helpers/bind9.ts), so Pebble's VA pointed at
 * `serverArg` resolves the test names and reads the TXT records PowerDNS serves.
 * A missing component is an Error naming the Debian package.
 */

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, query } from "../../src/dns/transport";
import { TYPE } from "../../src/dns/wire";
import { wileDnsArgs } from "./bind9";
import { auditInfra } from "./secrets-audit";
import {
  findBinary,
  freePort,
  type Proc,
  retryOnBindClash,
  StartError,
  startProc,
  stopOnce,
  stopProc,
  tail,
  waitReady,
} from "./testenv";

const SCHEMAS = [
  "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
  "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
];

export interface Pdns {
  /** { host: "127.0.0.1", port } of the DNS side, for src/dns. */
  server: DnsServer;
  /** "127.0.0.1:PORT" of the DNS side, for command lines (Pebble's -dnsserver, --dns-resolvers). */
  serverArg: string;
  /** http://127.0.0.1:PORT, the API's address (PDNS_API_URL). */
  apiUrl: string;
  apiKey: string;
  tmp: string;
  logTail(lines?: number): string;
  /** A request to the API (under /api/v1/servers/localhost) with the right key: the parsed JSON, if any. */
  api(path: string, method?: string, body?: unknown): Promise<unknown>;
  stop(): Promise<void>;
}

/** Why PowerDNS cannot run here (for test/helpers/ci.ts skipUnlessAvailable), or false. */
export function pdnsUnavailable(): string | false {
  try {
    findBinary("pdns_server");
    findBinary("sqlite3");
  } catch (e) {
    return (e as Error).message;
  }
  if (!SCHEMAS.some((f) => existsSync(f)))
    return "the gsqlite3 schema is missing: install the Debian package pdns-backend-sqlite3";
  return false;
}

/** `kind`: the zones' kind, Native (default) or Master (a primary: wile then asks for a NOTIFY). */
export async function startPdns(zones: string[], kind: "Native" | "Master" = "Native"): Promise<Pdns> {
  const bin = findBinary("pdns_server");
  const sqlite = findBinary("sqlite3");
  const schema = SCHEMAS.find((f) => existsSync(f));
  if (!schema)
    throw new Error("the gsqlite3 schema is missing: install the Debian package pdns-backend-sqlite3");
  return retryOnBindClash("pdns_server", () => startOnce(bin, sqlite, schema, zones, kind));
}

async function startOnce(
  bin: string,
  sqlite: string,
  schema: string,
  zones: string[],
  kind: string,
): Promise<Pdns> {
  const tmp = mkdtempSync(join(tmpdir(), "wile-pdns-"));
  chmodSync(tmp, 0o755);
  auditInfra(tmp);
  const db = join(tmp, "pdns.sqlite3");
  execFileSync(sqlite, [db, `.read ${schema}`], { stdio: ["ignore", "ignore", "pipe"] });
  const port = await freePort(true);
  const apiPort = await freePort();
  const apiKey = randomBytes(18).toString("base64url");
  const conf = [
    "launch=gsqlite3",
    `gsqlite3-database=${db}`,
    "local-address=127.0.0.1",
    `local-port=${port}`,
    "api=yes",
    `api-key=${apiKey}`,
    "webserver=yes",
    "webserver-address=127.0.0.1",
    `webserver-port=${apiPort}`,
    "webserver-allow-from=127.0.0.1",
    "guardian=no",
    "daemon=no",
    "disable-syslog=yes",
    `socket-dir=${tmp}`,
    // No query to the public DNS for PowerDNS's security status, no caches hiding a change.
    "security-poll-suffix=",
    "query-cache-ttl=0",
    "negquery-cache-ttl=0",
    "cache-ttl=0",
    "zone-cache-refresh-interval=0",
    "",
  ].join("\n");
  writeFileSync(join(tmp, "pdns.conf"), conf, { mode: 0o600 });
  const logFile = join(tmp, "pdns.log");
  const p: Proc = startProc(
    "pdns_server",
    bin,
    [`--config-dir=${tmp}`],
    { PATH: process.env.PATH ?? "" },
    logFile,
  );
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const base = `${apiUrl}/api/v1/servers/localhost`;
  const call = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${base}${path}`, {
      method,
      headers: { "X-API-Key": apiKey, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
  try {
    await waitReady(p, `API on ${apiUrl}`, async () => (await call("GET", "/zones")).ok);
  } catch (e) {
    await stopProc(p);
    if (e instanceof StartError && /Address already in use|Unable to bind/i.test(tail(logFile)))
      throw new StartError(e.message, true);
    throw e;
  }
  const server = { host: "127.0.0.1", port };
  try {
    for (const zone of zones) {
      const z = `${zone}.`;
      const set = (name: string, type: string, content: string) => ({
        name,
        type,
        ttl: 60,
        records: [{ content, disabled: false }],
      });
      const res = await call("POST", "/zones", {
        name: z,
        kind,
        nameservers: [],
        rrsets: [
          set(z, "SOA", `ns1.${z} hostmaster.${z} 1 3600 600 86400 60`),
          set(z, "NS", `ns1.${z}`),
          set(z, "A", "127.0.0.1"),
          set(`ns1.${z}`, "A", "127.0.0.1"),
          set(`*.${z}`, "A", "127.0.0.1"),
        ],
      });
      if (res.status !== 201)
        throw new Error(`creating zone ${zone}: HTTP ${res.status} ${await res.text()}`);
      const m = await query(server, zone, TYPE.SOA, { timeoutMs: 1000 });
      if (!m.answers.some((rr) => rr.type === TYPE.SOA))
        throw new Error(`zone ${zone} has no SOA on ${port}`);
    }
  } catch (e) {
    await stopProc(p);
    throw new Error(`pdns_server on ${port}: ${(e as Error).message}\n${tail(logFile)}`);
  }
  return {
    server,
    serverArg: `127.0.0.1:${port}`,
    apiUrl,
    apiKey,
    tmp,
    logTail: (lines = 30) => tail(logFile, lines),
    api: async (path, method = "GET", body) => {
      const res = await call(method, path, body);
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    },
    stop: stopOnce(p, tmp),
  };
}

/**
 * Options every `wile issue --dns powerdns` of an e2e test passes, so that wile's propagation check
 * asks this server (test zones are not in the public DNS): bind9.ts's wileDnsArgs for this server's
 * address (it only reads `serverArg`), so both follow when the propagation check's options change.
 */
export function wilePdnsArgs(pdns: Pdns): string[] {
  return wileDnsArgs(pdns);
}
