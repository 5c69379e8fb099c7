/**
 * src/dns/propagation.ts against a scripted DNS double (an injected query function and clock):
 * finding the zone by SOA, its servers with and without glue, polling without sleeping when the
 * record is there, servers that time out or SERVFAIL, the deadlines, CNAME chains and loops.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  allValues,
  authoritativeServers,
  type DnsIo,
  findZoneOf,
  followCnames,
  propagationCheck,
  recordLocator,
  waitForTxt,
} from "../../../src/dns/propagation";
import type { DnsServer } from "../../../src/dns/transport";
import {
  DnsError,
  type Message,
  message,
  type RData,
  type ResourceRecord,
  TYPE,
} from "../../../src/dns/wire";
import { WileError } from "../../../src/util/errors";
import { type Logger, silentLogger } from "../../../src/util/log";

const RESOLVER: DnsServer = { host: "10.0.0.53", port: 53 };

function rr(name: string, data: RData): ResourceRecord {
  const type = { A: TYPE.A, AAAA: TYPE.AAAA, NS: TYPE.NS, CNAME: TYPE.CNAME, SOA: TYPE.SOA, TXT: TYPE.TXT }[
    data.type as "A"
  ];
  return { name, type, class: 1, ttl: 60, rdata: Buffer.alloc(0), data };
}
const soa = (zone: string) =>
  rr(zone, {
    type: "SOA",
    soa: {
      mname: `ns1.${zone}`,
      rname: `h.${zone}`,
      serial: 1,
      refresh: 1,
      retry: 1,
      expire: 1,
      minimum: 60,
    },
  });
const txt = (name: string, ...values: string[]) => values.map((v) => rr(name, { type: "TXT", strings: [v] }));
const answer = (fields: Partial<Message>) => message({ qr: true, ...fields });

type Handler = (name: string, type: number, recursive: boolean) => Message | Promise<Message>;

/**
 * A scripted network: each server host has a handler; every question is logged as
 * "host type name [rd]"; sleep() advances the fake clock and is logged.
 */
function scripted(servers: Record<string, Handler>, opts: { ipv6?: boolean } = {}) {
  let clock = 1_000_000;
  const asked: string[] = [];
  const sleeps: number[] = [];
  const typeName = (t: number) => Object.entries(TYPE).find(([, v]) => v === t)?.[0] ?? String(t);
  const io: DnsIo = {
    query: async (server, name, type, q = {}) => {
      asked.push(`${server.host} ${typeName(type)} ${name}${q.recursive ? " rd" : ""}`);
      const h = servers[server.host];
      if (!h)
        throw new DnsError(`no answer from DNS server ${server.host}:53 over UDP within ${q.timeoutMs} ms`);
      return h(name, type, q.recursive ?? false);
    },
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    now: () => clock,
    systemResolvers: () => [RESOLVER],
    ipv6: () => opts.ipv6 ?? false,
  };
  return { io, asked, sleeps, advance: (ms: number) => (clock += ms) };
}

/** A logger that keeps its lines. */
function recording(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    debug: () => {},
  };
}

/** The resolver of example.com's world: zone example.com, NS ns1 (glue) and ns2.other.net (no glue). */
function resolver(extra: Handler = () => answer({ rcode: 3 })): Handler {
  return (name, type) => {
    if (type === TYPE.SOA) {
      if (name === "example.com") return answer({ answers: [soa("example.com")] });
      if (name.endsWith(".example.com")) return answer({ rcode: 3, authorities: [soa("example.com")] });
    }
    if (type === TYPE.NS && name === "example.com") {
      return answer({
        answers: [
          rr("example.com", { type: "NS", name: "ns1.example.com" }),
          rr("example.com", { type: "NS", name: "ns2.other.net" }),
        ],
        additionals: [rr("ns1.example.com", { type: "A", address: "192.0.2.1" })],
      });
    }
    if (name === "ns2.other.net" && type === TYPE.A)
      return answer({ answers: [rr("ns2.other.net", { type: "A", address: "198.51.100.2" })] });
    if (name === "ns2.other.net" && type === TYPE.AAAA)
      return answer({ answers: [rr("ns2.other.net", { type: "AAAA", address: "2001:db8::2" })] });
    return extra(name, type, true);
  };
}

const FQDN = "_acme-challenge.www.example.com";

describe("finding the servers to ask", () => {
  test("the zone comes from the SOA in the authority section of the first answer: one query", async () => {
    const { io, asked } = scripted({ [RESOLVER.host]: resolver() });
    assert.equal(await findZoneOf(io, [RESOLVER], FQDN), "example.com");
    assert.deepEqual(asked, [`10.0.0.53 SOA ${FQDN} rd`]);
  });

  test("SOA walk: a name with no SOA in its answer, then its parent, until one answers with its own SOA", async () => {
    const { io, asked } = scripted({
      [RESOLVER.host]: (name) =>
        name === "sub.example.com" ? answer({ answers: [soa("sub.example.com")] }) : answer({}),
    });
    assert.equal(await findZoneOf(io, [RESOLVER], "_acme-challenge.a.sub.example.com"), "sub.example.com");
    assert.deepEqual(asked, [
      "10.0.0.53 SOA _acme-challenge.a.sub.example.com rd",
      "10.0.0.53 SOA a.sub.example.com rd",
      "10.0.0.53 SOA sub.example.com rd",
    ]);
  });

  test("a resolver that fails is passed over for the next; when all fail, each failure is named", async () => {
    const bad: DnsServer = { host: "10.0.0.54", port: 53 };
    const { io } = scripted({ [RESOLVER.host]: resolver(), [bad.host]: () => answer({ rcode: 2 }) });
    assert.equal(await findZoneOf(io, [bad, RESOLVER], FQDN), "example.com");
    await assert.rejects(findZoneOf(io, [bad, { host: "10.0.0.55", port: 53 }], FQDN), (e: unknown) => {
      assert.ok(e instanceof DnsError);
      assert.match(e.message, /10\.0\.0\.54:53 answered SERVFAIL; no answer from DNS server 10\.0\.0\.55/);
      return true;
    });
  });

  test("NS set: glue used as is, an NS without glue resolved (A, and AAAA only when this host has IPv6)", async () => {
    let s = scripted({ [RESOLVER.host]: resolver() });
    let targets = await authoritativeServers(s.io, [RESOLVER], "example.com", silentLogger);
    assert.deepEqual(
      targets.map((t) => [t.label, t.server.host, t.server.port, t.recursive]),
      [
        ["ns1.example.com (192.0.2.1)", "192.0.2.1", 53, false],
        ["ns2.other.net (198.51.100.2)", "198.51.100.2", 53, false],
      ],
    );
    assert.ok(!s.asked.some((q) => q.includes("ns1.example.com")), "glue needs no lookup");
    assert.ok(!s.asked.some((q) => q.includes("AAAA")));
    s = scripted({ [RESOLVER.host]: resolver() }, { ipv6: true });
    targets = await authoritativeServers(s.io, [RESOLVER], "example.com", silentLogger);
    assert.deepEqual(
      targets.map((t) => t.label),
      ["ns1.example.com (192.0.2.1)", "ns2.other.net (198.51.100.2)", "ns2.other.net (2001:db8::2)"],
    );
  });
});

describe("waitForTxt", () => {
  const servers = (values: Record<string, () => Message | Promise<Message>>): Record<string, Handler> =>
    Object.fromEntries(
      Object.entries(values).map(([host, h]) => [
        host,
        // Authoritative answers unless a case says otherwise (aa: false).
        async (name: string) => (name === FQDN ? { ...(await h()), aa: true } : answer({ rcode: 5 })),
      ]),
    );

  test("the record already visible everywhere: no sleep at all, each authoritative server asked once without rd", async () => {
    const s = scripted({
      [RESOLVER.host]: resolver(),
      ...servers({
        "192.0.2.1": () => answer({ aa: true, answers: txt(FQDN, "v1", "other") }),
        "198.51.100.2": () => answer({ aa: true, answers: txt(FQDN, "v1") }),
      }),
    });
    await waitForTxt(FQDN, allValues(["v1"]), {
      timeoutMs: 60_000,
      logger: silentLogger,
      what: "the record",
      io: s.io,
    });
    assert.deepEqual(s.sleeps, []);
    assert.deepEqual(
      s.asked.filter((q) => q.includes(" TXT ")),
      [`192.0.2.1 TXT ${FQDN}`, `198.51.100.2 TXT ${FQDN}`],
    );
  });

  test("a server that catches up: asked again after 250, 500 ms; the one already showing it is not asked again", async () => {
    let polls = 0;
    const s = scripted({
      [RESOLVER.host]: resolver(),
      ...servers({
        "192.0.2.1": () => answer({ answers: txt(FQDN, "v1") }),
        "198.51.100.2": () => answer(++polls >= 3 ? { answers: txt(FQDN, "v1") } : { rcode: 3 }),
      }),
    });
    const log = recording();
    await waitForTxt(FQDN, allValues(["v1"]), {
      timeoutMs: 60_000,
      logger: log,
      what: "the record",
      io: s.io,
    });
    assert.deepEqual(s.sleeps, [250, 500]);
    assert.equal(s.asked.filter((q) => q.startsWith("192.0.2.1 TXT")).length, 1);
    assert.equal(polls, 3);
    assert.match(log.lines.join("\n"), /Waiting until the record is visible at 1 of 2 DNS server\(s\)/);
  });

  test("giving up: every lagging server named with its address and what it said; intervals grow to a cap", async () => {
    const s = scripted({
      [RESOLVER.host]: resolver(),
      ...servers({
        "192.0.2.1": () => answer({ rcode: 2 }),
        "198.51.100.2": () => answer({ answers: txt(FQDN, "stale-value") }),
        "127.0.0.1": () => answer({ answers: [rr(FQDN, { type: "CNAME", name: "elsewhere.test" })] }),
      }),
    });
    await assert.rejects(
      waitForTxt(FQDN, allValues(["v1"]), {
        servers: [{ host: "127.0.0.1", port: 53 }],
        timeoutMs: 100,
        logger: silentLogger,
        what: "r",
        io: s.io,
      }),
      /127\.0\.0\.1:53: an alias \(CNAME\) of elsewhere\.test, no TXT record/,
    );
    s.sleeps.length = 0;
    await assert.rejects(
      waitForTxt(FQDN, allValues(["v1"]), {
        timeoutMs: 20_000,
        logger: silentLogger,
        what: "the TXT record x",
        io: s.io,
      }),
      (e: unknown) => {
        assert.ok(e instanceof WileError && !(e instanceof DnsError));
        assert.match(
          e.message,
          /the TXT record x is not visible at every DNS server after 20 s \(--dns-timeout\)/,
        );
        assert.match(e.message, /ns1\.example\.com \(192\.0\.2\.1\): answered SERVFAIL/);
        assert.match(
          e.message,
          /ns2\.other\.net \(198\.51\.100\.2\): other values \("stale-value"\); 1 of the 1 expected missing/,
        );
        assert.match(e.hint ?? "", /NOTIFY.*--dns-timeout.*--dns-resolvers.*--no-dns-check/s);
        return true;
      },
    );
    assert.deepEqual(s.sleeps, [250, 500, 1000, 2000, 4000, 4000, 4000, 4000, 250]);
  });

  test("an authoritative server answering without authority (lame) lags, named as such", async () => {
    const s = scripted({
      [RESOLVER.host]: resolver(),
      "192.0.2.1": () => answer({ answers: txt(FQDN, "v1") }),
      "198.51.100.2": () => answer({ aa: true, answers: txt(FQDN, "v1") }),
    });
    await assert.rejects(
      waitForTxt(FQDN, allValues(["v1"]), { timeoutMs: 1000, logger: silentLogger, what: "r", io: s.io }),
      (e: unknown) => {
        assert.match((e as Error).message, /ns1\.example\.com \(192\.0\.2\.1\): answered without authority/);
        assert.doesNotMatch((e as Error).message, /ns2\.other\.net/);
        return true;
      },
    );
  });

  test("a server that does not answer is named with the error; the run's deadline ends the wait first", async () => {
    const s = scripted({});
    const given: DnsServer[] = [{ host: "127.0.0.1", port: 5301 }];
    const deadline = s.io.now() + 1000;
    await assert.rejects(
      waitForTxt(FQDN, allValues(["v1"]), {
        servers: given,
        timeoutMs: 60_000,
        deadline,
        logger: silentLogger,
        what: "r",
        io: s.io,
      }),
      /after 1 s \(the run's --timeout ran out\); lagging:\n {2}127\.0\.0\.1:5301: error: no answer from DNS server/,
    );
    assert.deepEqual(s.asked, [
      `127.0.0.1 TXT ${FQDN} rd`,
      `127.0.0.1 TXT ${FQDN} rd`,
      `127.0.0.1 TXT ${FQDN} rd`,
      `127.0.0.1 TXT ${FQDN} rd`,
    ]);
    assert.deepEqual(s.sleeps, [250, 500, 250]);
  });

  test("given servers replace discovery: no SOA or NS asked, each given server must show the value", async () => {
    const s = scripted({
      ...servers({
        "127.0.0.1": () => answer({ answers: txt(FQDN, "v1") }),
        "127.0.0.2": () => answer({ answers: txt(FQDN, "v1") }),
      }),
    });
    await waitForTxt(FQDN, allValues(["v1"]), {
      servers: [
        { host: "127.0.0.1", port: 53 },
        { host: "127.0.0.2", port: 53 },
      ],
      timeoutMs: 1000,
      logger: silentLogger,
      what: "r",
      io: s.io,
    });
    assert.deepEqual(s.asked, [`127.0.0.1 TXT ${FQDN} rd`, `127.0.0.2 TXT ${FQDN} rd`]);
  });
});

describe("propagationCheck", () => {
  test("one wait per record name with all its values; --no-dns-check asks nothing and says so once", async () => {
    const seen: string[] = [];
    const s = scripted({
      "127.0.0.1": (name) => {
        seen.push(name);
        return answer({ answers: txt(name, "a", "b") });
      },
    });
    const rec = (fqdn: string, value: string) => ({ fqdn, value, identifier: "x", token: "t" });
    await propagationCheck(
      { timeout: 5, resolvers: ["127.0.0.1"] },
      { logger: silentLogger, io: s.io },
    )([
      rec("_acme-challenge.example.com", "a"),
      rec("_acme-challenge.example.com", "b"),
      rec("_acme-challenge.example.org", "a"),
    ]);
    assert.deepEqual(seen.sort(), ["_acme-challenge.example.com", "_acme-challenge.example.org"]);
    await assert.rejects(
      propagationCheck(
        { timeout: 1, resolvers: ["127.0.0.1"] },
        { logger: silentLogger, io: s.io },
      )([rec("_acme-challenge.example.com", "c")]),
      /127\.0\.0\.1:53: other values \("a", "b"\)/,
    );
    const log = recording();
    const quiet = scripted({});
    await propagationCheck(
      { timeout: 5, skip: true },
      { logger: log, io: quiet.io },
    )([rec("_acme-challenge.example.com", "a")]);
    assert.deepEqual(quiet.asked, []);
    assert.deepEqual(log.lines, [
      "info Not checking that _acme-challenge.example.com can be seen in DNS (--no-dns-check); asking the CA now",
    ]);
  });
});

describe("where the record goes", () => {
  const cnames =
    (map: Record<string, string>): Handler =>
    (name, type) => {
      assert.equal(type, TYPE.CNAME);
      const to = map[name];
      return to ? answer({ answers: [rr(name, { type: "CNAME", name: to })] }) : answer({ rcode: 3 });
    };
  const record = { fqdn: FQDN, value: "v", identifier: "www.example.com", token: "t" };

  test("no CNAME: the name itself; a CNAME chain: its end", async () => {
    let s = scripted({ [RESOLVER.host]: cnames({}) });
    assert.equal(await followCnames(s.io, [RESOLVER], FQDN), FQDN);
    s = scripted({
      [RESOLVER.host]: cnames({
        [FQDN]: "_acme-challenge.www.alias.test",
        "_acme-challenge.www.alias.test": "x.final.test",
      }),
    });
    const log = recording();
    assert.equal(await recordLocator({ logger: log, io: s.io })(record), "x.final.test");
    assert.match(log.lines[0] ?? "", /is an alias \(CNAME\) of x\.final\.test: the record goes there/);
  });

  test("a CNAME loop and a chain too long are refused, naming the chain", async () => {
    let s = scripted({ [RESOLVER.host]: cnames({ [FQDN]: "a.test", "a.test": "b.test", "b.test": FQDN }) });
    await assert.rejects(followCnames(s.io, [RESOLVER], FQDN), {
      message: `the CNAMEs from ${FQDN} form a loop: ${FQDN} -> a.test -> b.test -> ${FQDN}`,
    });
    const chain = Object.fromEntries(
      Array.from({ length: 12 }, (_, i) => [i === 0 ? FQDN : `n${i}.test`, `n${i + 1}.test`]),
    );
    s = scripted({ [RESOLVER.host]: cnames(chain) });
    await assert.rejects(followCnames(s.io, [RESOLVER], FQDN), /more than 8 CNAMEs follow each other/);
  });

  test("--dns-alias: _acme-challenge.ZONE without a lookup; a failed lookup fails, or warns with --no-dns-check", async () => {
    const s = scripted({});
    const alias = (id: string) => (id === "www.example.com" ? "alias.example" : undefined);
    assert.equal(
      await recordLocator({ alias, logger: silentLogger, io: s.io })(record),
      "_acme-challenge.alias.example",
    );
    assert.deepEqual(s.asked, []);
    await assert.rejects(
      recordLocator({ resolvers: ["127.0.0.9"], logger: silentLogger, io: s.io })(record),
      /could not find out whether _acme-challenge\.www\.example\.com is an alias/,
    );
    const log = recording();
    assert.equal(
      await recordLocator({ resolvers: ["127.0.0.9"], lenient: true, logger: log, io: s.io })(record),
      FQDN,
    );
    assert.match(log.lines[0] ?? "", /^warn could not look up whether/);
  });
});
