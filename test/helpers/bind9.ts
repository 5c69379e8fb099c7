/**
 * A throwaway BIND9 `named` on 127.0.0.1 (UDP and TCP on one free port), run in the foreground as
 * the current user from its own temp directory:
 *
 *     <tmp>/named.conf            options, the keys, one primary zone per test zone
 *     <tmp>/<key>.key             TSIG keys in BIND's format, as tsig-keygen writes them
 *     <tmp>/<zone>.zone           SOA, NS ns1.<zone>, A 127.0.0.1 for the apex, ns1 and *.<zone>
 *     <tmp>/named.log             named's output (-g: everything to stderr), quoted when start fails
 *
 * Each zone allows dynamic updates signed by any of the keys (default: "wile-test" hmac-sha256 and
 * "wile-test-512" hmac-sha512). Ready when every zone answers an SOA query.
 * A missing named is an Error naming the Debian package (bind9).
 *
 * With `secondaryOf: primary`, the instance is a lagging secondary instead: its zones are copies
 * of the primary's, transferred once at start (AXFR) and then never refreshed, because the primary
 * sends no NOTIFY and the SOA refresh (3600 s) is far away. Updates on the primary are then not
 * visible there until the test calls `notify(zone)` on the secondary, which makes it transfer the
 * zone again (what a propagation check that waits for a lagging server needs).
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, exchange, newId, query } from "../../src/dns/transport";
import { CLASS, decodeMessage, encodeMessage, message, OPCODE, TYPE } from "../../src/dns/wire";
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

export interface Bind9Zone {
  /** e.g. "example.test" */
  name: string;
  /** Extra zone-file lines, e.g. `_acme-challenge.www IN CNAME _acme-challenge.alias.test.`. */
  records?: string[];
}

export interface Bind9Key {
  name: string;
  algorithm: "hmac-sha256" | "hmac-sha512";
}

export interface Bind9Options {
  zones: (string | Bind9Zone)[];
  /** Keys allowed to update every zone; default wile-test (hmac-sha256), wile-test-512 (hmac-sha512). */
  keys?: Bind9Key[];
  /** Serve the zones as a secondary of this running instance (see above); no keys, no updates. */
  secondaryOf?: Bind9;
  /**
   * Be a caching resolver instead, forwarding every question to this running instance and
   * following CNAMEs from one of its zones into another, as the CA's resolver does (an
   * authoritative-only named answers the CNAME alone). Its cache keeps answers no longer than
   * TTL 0 allows, but named counts in whole seconds, so an answer can live up to a second: a test
   * that validates the same name again at once calls flush() first. `zones` are only waited for.
   */
  resolverFor?: Bind9;
}

export interface Bind9 {
  port: number;
  /** { host: "127.0.0.1", port } for src/dns. */
  server: DnsServer;
  /** "127.0.0.1:PORT", for command lines. */
  serverArg: string;
  /** Key name -> path of its BIND key file. */
  keyFiles: Record<string, string>;
  /** Key name -> base64 secret (to build wrong keys, or to tell the secrets audit). */
  secrets: Record<string, string>;
  tmp: string;
  logFile: string;
  /** The last lines of named's log, for failure messages. */
  logTail(lines?: number): string;
  /** Empties a resolver's cache (rndc flush); for resolverFor instances only. */
  flush(): Promise<void>;
  /** Sends a NOTIFY for `zone` to this instance; a secondary then transfers the zone again. */
  notify(zone: string): Promise<void>;
  stop(): Promise<void>;
}

const DEFAULT_KEYS: Bind9Key[] = [
  { name: "wile-test", algorithm: "hmac-sha256" },
  { name: "wile-test-512", algorithm: "hmac-sha512" },
];

/** A key file exactly as `tsig-keygen -a ALG NAME` writes it. */
export function bindKeyFile(name: string, algorithm: string, secret: string): string {
  return `key "${name}" {\n\talgorithm ${algorithm};\n\tsecret "${secret}";\n};\n`;
}

function zoneFile(zone: Bind9Zone): string {
  return [
    `$ORIGIN ${zone.name}.`,
    "$TTL 60",
    `@ IN SOA ns1.${zone.name}. hostmaster.${zone.name}. 1 3600 600 86400 60`,
    "@ IN NS ns1",
    "ns1 IN A 127.0.0.1",
    "@ IN A 127.0.0.1",
    "* IN A 127.0.0.1",
    ...(zone.records ?? []),
    "",
  ].join("\n");
}

/** Why BIND9 cannot run here (for test/helpers/ci.ts skipUnlessAvailable), or false. */
export function bind9Unavailable(): string | false {
  try {
    findBinary("named");
    return false;
  } catch (e) {
    return (e as Error).message;
  }
}

async function serial(server: DnsServer, zone: string): Promise<number | undefined> {
  const m = await query(server, zone, TYPE.SOA, { timeoutMs: 1000 });
  const soa = m.answers.find((rr) => rr.data?.type === "SOA")?.data;
  return soa?.type === "SOA" ? soa.soa.serial : undefined;
}

export async function startBind9(opts: Bind9Options): Promise<Bind9> {
  const named = findBinary("named");
  return retryOnBindClash("named", () => startOnce(named, opts));
}

async function startOnce(named: string, opts: Bind9Options): Promise<Bind9> {
  const tmp = mkdtempSync(join(tmpdir(), "wile-bind9-"));
  chmodSync(tmp, 0o755);
  auditInfra(tmp);
  const zones = opts.zones.map((z) => (typeof z === "string" ? { name: z } : z));
  const keys = opts.keys ?? DEFAULT_KEYS;
  const port = await freePort(true);
  // rndc's control channel (resolvers only: flush()), with its own key.
  const rndcPort = opts.resolverFor ? await freePort() : 0;
  const rndcKey = join(tmp, "rndc.key");
  if (opts.resolverFor) {
    writeFileSync(rndcKey, bindKeyFile("rndc-key", "hmac-sha256", randomBytes(32).toString("base64")), {
      mode: 0o600,
    });
  }
  const keyFiles: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  for (const k of keys) {
    secrets[k.name] = randomBytes(k.algorithm === "hmac-sha512" ? 64 : 32).toString("base64");
    keyFiles[k.name] = join(tmp, `${k.name}.key`);
    writeFileSync(keyFiles[k.name] as string, bindKeyFile(k.name, k.algorithm, secrets[k.name] as string), {
      mode: 0o600,
    });
  }
  const allow = keys.map((k) => `key "${k.name}";`).join(" ");
  const conf = [
    "options {",
    `  directory "${tmp}";`,
    `  pid-file "${join(tmp, "named.pid")}";`,
    `  session-keyfile "${join(tmp, "session.key")}";`,
    `  listen-on port ${port} { 127.0.0.1; };`,
    "  listen-on-v6 { none; };",
    ...(opts.resolverFor
      ? [
          "  recursion yes;",
          "  allow-recursion { 127.0.0.1; };",
          `  forwarders { 127.0.0.1 port ${opts.resolverFor.port}; };`,
          "  forward only;",
          "  max-cache-ttl 0;",
          "  max-ncache-ttl 0;",
        ]
      : ["  recursion no;"]),
    "  dnssec-validation no;",
    "  notify no;",
    "  allow-transfer { 127.0.0.1; };",
    "};",
    ...(opts.resolverFor
      ? [
          `include "${rndcKey}";`,
          `controls { inet 127.0.0.1 port ${rndcPort} allow { 127.0.0.1; } keys { "rndc-key"; }; };`,
        ]
      : ["controls { };"]),
    ...keys.map((k) => `include "${keyFiles[k.name]}";`),
    ...zones.map((z) => {
      if (opts.resolverFor) return "";
      if (opts.secondaryOf) {
        return `zone "${z.name}" { type secondary; primaries { 127.0.0.1 port ${opts.secondaryOf.port}; }; allow-notify { 127.0.0.1; }; };`;
      }
      writeFileSync(join(tmp, `${z.name}.zone`), zoneFile(z));
      return `zone "${z.name}" { type primary; file "${join(tmp, `${z.name}.zone`)}"; allow-update { ${allow} }; };`;
    }),
    "",
  ].join("\n");
  const confFile = join(tmp, "named.conf");
  writeFileSync(confFile, conf);
  const logFile = join(tmp, "named.log");
  // -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker thread (starts faster).
  const p: Proc = startProc(
    "named",
    named,
    ["-g", "-4", "-n", "1", "-c", confFile],
    { PATH: process.env.PATH ?? "" },
    logFile,
  );
  const server = { host: "127.0.0.1", port };
  try {
    await waitReady(p, `SOA of ${zones.map((z) => z.name).join(", ")} on 127.0.0.1:${port}`, async () => {
      for (const z of zones) {
        const m = await query(server, z.name, TYPE.SOA, { timeoutMs: 200, recursive: !!opts.resolverFor });
        if (m.rcode !== 0 || !m.answers.some((rr) => rr.type === TYPE.SOA)) return false;
      }
      return true;
    });
  } catch (e) {
    await stopProc(p);
    // named says "unable to listen on any configured interfaces" (not "address in use") and exits
    // when another process took the port after freePort found it free.
    if (e instanceof StartError && /unable to listen on any configured interfaces/.test(tail(logFile))) {
      throw new StartError(e.message, true);
    }
    throw e;
  }
  return {
    port,
    server,
    serverArg: `127.0.0.1:${port}`,
    keyFiles,
    secrets,
    tmp,
    logFile,
    logTail: (lines = 30) => tail(logFile, lines),
    flush: async () => {
      if (!opts.resolverFor) throw new Error("flush() is for a resolverFor instance");
      const r = spawnSync(
        findBinary("rndc"),
        ["-s", "127.0.0.1", "-p", String(rndcPort), "-k", rndcKey, "flush"],
        { encoding: "utf8", timeout: 5000 },
      );
      if (r.status !== 0) throw new Error(`rndc flush failed: ${r.stderr || r.stdout}\n${tail(logFile)}`);
    },
    notify: async (zone: string) => {
      const id = newId();
      const notify = message({
        id,
        aa: true,
        opcode: OPCODE.NOTIFY,
        questions: [{ name: zone, type: TYPE.SOA, class: CLASS.IN }],
      });
      const answer = decodeMessage(await exchange(server, encodeMessage(notify), { timeoutMs: 2000 }));
      if (answer.rcode !== 0)
        throw new Error(`named on ${port} answered NOTIFY for ${zone} with rcode ${answer.rcode}`);
      const primary = opts.secondaryOf;
      if (!primary) return;
      const want = await serial(primary.server, zone);
      const deadline = Date.now() + 5000;
      while ((await serial(server, zone)) !== want) {
        if (Date.now() > deadline)
          throw new Error(`secondary on ${port} did not transfer ${zone} serial ${want}:\n${tail(logFile)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: stopOnce(p, tmp),
  };
}

/**
 * Options every `wile issue --dns ...` of an e2e test against this BIND9 passes, so that wile's
 * propagation check (and its CNAME lookup) asks this server: test zones are not in the public DNS.
 */
export function wileDnsArgs(bind: Pick<Bind9, "serverArg">): string[] {
  return ["--dns-resolvers", bind.serverArg];
}
