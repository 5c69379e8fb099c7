/**
 * src/dns/providers/powerdns.ts: the rrset merging (pure), the requests it sends (against a
 * scripted HTTP server that keeps one zone's TXT sets the way PowerDNS does), errors. The real
 * PowerDNS is in test/e2e/dns-pdns-route53.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { canonicalParents, changeTxtSet, quoteTxt, unquoteTxt } from "../../../src/dns/api-common";
import { type DnsRecord, readProviderSettings } from "../../../src/dns/provider";
import {
  PDNS_TTL,
  pdnsServerBase,
  powerdnsProvider,
  txtRrsetChange,
} from "../../../src/dns/providers/powerdns";
import { dnsProvider } from "../../../src/dns/registry";
import { WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { SettingError } from "../../../src/util/settings";
import { type HttpFake, reply, startHttpFake } from "../../helpers/http-fake";

const rec = (value: string, fqdn = "_acme-challenge.www.example.com"): DnsRecord => ({
  fqdn,
  value,
  identifier: fqdn.replace("_acme-challenge.", ""),
  token: "t",
});

describe("TXT content in presentation form", () => {
  test("quoted, with quote and backslash escaped; read back, split strings joined, \\DDD undone", () => {
    assert.equal(quoteTxt("abc-_09"), '"abc-_09"');
    assert.equal(quoteTxt('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(unquoteTxt(quoteTxt('a"b\\c')), 'a"b\\c');
    assert.equal(unquoteTxt('"part one" "part two"'), "part onepart two");
    assert.equal(unquoteTxt('"a\\032b"'), "a b");
    assert.equal(unquoteTxt("bare"), "bare");
  });

  test("zone candidates walk up the labels, canonical and lower case", () => {
    assert.deepEqual(canonicalParents("_acme-challenge.WWW.example.com"), [
      "_acme-challenge.www.example.com.",
      "www.example.com.",
      "example.com.",
      "com.",
    ]);
    assert.deepEqual(canonicalParents("example.com."), ["example.com.", "com."]);
  });

  test("changeTxtSet keeps other records verbatim and in order", () => {
    const how = { content: (r: string) => r, make: (c: string) => c };
    assert.deepEqual(changeTxtSet(['"b"', '"a"'], "c", true, how), ['"b"', '"a"', '"c"']);
    assert.equal(changeTxtSet(['"b"', '"c"'], "c", true, how), undefined);
    assert.deepEqual(changeTxtSet(['"b"', '"c"', '"a"'], "c", false, how), ['"b"', '"a"']);
    assert.equal(changeTxtSet(['"b"'], "c", false, how), undefined);
  });
});

describe("powerdns: the rrset change", () => {
  const name = "_acme-challenge.example.com.";
  test("a new set: REPLACE with our value, the default TTL", () => {
    assert.deepEqual(txtRrsetChange(name, undefined, "v1", true), {
      name,
      type: "TXT",
      ttl: PDNS_TTL,
      changetype: "REPLACE",
      records: [{ content: '"v1"', disabled: false }],
    });
  });

  test("an existing set: REPLACE with the values there (disabled ones too) plus ours, its TTL kept", () => {
    const current = {
      ttl: 300,
      records: [
        { content: '"other"', disabled: false },
        { content: '"off"', disabled: true },
      ],
    };
    assert.deepEqual(txtRrsetChange(name, current, "v1", true), {
      name,
      type: "TXT",
      ttl: 300,
      changetype: "REPLACE",
      records: [...current.records, { content: '"v1"', disabled: false }],
    });
  });

  test("our value there already: nothing; there but disabled: enabled", () => {
    assert.equal(
      txtRrsetChange(name, { ttl: 60, records: [{ content: '"v1"', disabled: false }] }, "v1", true),
      undefined,
    );
    assert.deepEqual(
      txtRrsetChange(name, { ttl: 60, records: [{ content: '"v1"', disabled: true }] }, "v1", true)?.records,
      [{ content: '"v1"', disabled: false }],
    );
  });

  test("removing: REPLACE without ours, DELETE when ours was the last, nothing when it is gone", () => {
    const two = { ttl: 60, records: [{ content: '"v1"' }, { content: '"v2"' }] };
    assert.deepEqual(txtRrsetChange(name, two, "v1", false), {
      name,
      type: "TXT",
      ttl: 60,
      changetype: "REPLACE",
      records: [{ content: '"v2"' }],
    });
    assert.deepEqual(txtRrsetChange(name, { ttl: 60, records: [{ content: '"v1"' }] }, "v1", false), {
      name,
      type: "TXT",
      changetype: "DELETE",
    });
    assert.equal(txtRrsetChange(name, two, "v3", false), undefined);
    assert.equal(txtRrsetChange(name, undefined, "v3", false), undefined);
  });

  test("the API base from the URL given, with or without /api/v1, behind a path prefix", () => {
    assert.equal(pdnsServerBase("http://ns1:8081", "localhost"), "http://ns1:8081/api/v1/servers/localhost");
    assert.equal(
      pdnsServerBase("http://ns1:8081/api/v1/", "localhost"),
      "http://ns1:8081/api/v1/servers/localhost",
    );
    assert.equal(pdnsServerBase("https://h/pdns/", "srv-2"), "https://h/pdns/api/v1/servers/srv-2");
  });
});

describe("powerdns: settings", () => {
  test("registered; URL and key from lego's variables; the key is not stored; bad URLs refused", () => {
    assert.equal(dnsProvider("powerdns"), powerdnsProvider);
    const r = readProviderSettings(
      powerdnsProvider,
      {},
      { env: { PDNS_API_URL: "http://ns1:8081", PDNS_API_KEY: "k3y-value", PDNS_SERVER_NAME: "srv" } },
      (k) => k,
    );
    assert.deepEqual(r.values, { apiUrl: "http://ns1:8081", apiKey: "k3y-value", serverId: "srv" });
    assert.deepEqual(r.stored, { provider: "powerdns", apiUrl: "http://ns1:8081", serverId: "srv" });
    for (const apiUrl of ["ns1:8081", "ftp://ns1", "http://user:pw@ns1:8081", "http://ns1/?api-key=x"])
      assert.throws(
        () => readProviderSettings(powerdnsProvider, { apiUrl, apiKey: "k" }, {}, (k) => k),
        SettingError,
        apiUrl,
      );
    assert.throws(
      () => readProviderSettings(powerdnsProvider, { apiUrl: "http://ns1" }, {}, (k) => k),
      SettingError,
    );
  });
});

describe("powerdns: requests against a scripted API", () => {
  let fake: HttpFake;
  /** The fake zone's TXT sets: name -> {ttl, records}. */
  let sets: Map<string, { ttl: number; records: { content: string; disabled: boolean }[] }>;
  const KEY = "the-api-key-123";

  before(async () => {
    fake = await startHttpFake();
  });
  after(() => fake.close());

  /** A PowerDNS with zone example.com. (id "example.com.") on server "localhost". */
  function pdnsLike(kind = "Native", notifyStatus = 200) {
    sets = new Map();
    fake.requests.length = 0;
    fake.route = (req, res) => {
      if (req.headers["x-api-key"] !== KEY) return reply(res, 401, "Unauthorized");
      const u = new URL(req.url, fake.base);
      if (req.method === "GET" && u.pathname === "/api/v1/servers/localhost/zones") {
        const z = u.searchParams.get("zone");
        return reply(
          res,
          200,
          z === "example.com." ? [{ id: "example.com.", name: "example.com.", kind }] : [],
        );
      }
      if (req.method === "PUT" && u.pathname === "/api/v1/servers/localhost/zones/example.com./notify")
        return reply(res, notifyStatus, { result: "Notification queued" });
      if (u.pathname !== "/api/v1/servers/localhost/zones/example.com.") return reply(res, 404, "Not Found");
      if (req.method === "GET") {
        const rrsets = [...sets].map(([name, s]) => ({
          name,
          type: "TXT",
          ttl: s.ttl,
          records: s.records,
          comments: [],
        }));
        rrsets.push({ name: "example.com.", type: "SOA", ttl: 60, records: [], comments: [] });
        return reply(res, 200, { id: "example.com.", name: "example.com.", rrsets });
      }
      if (req.method === "PATCH") {
        for (const rr of JSON.parse(req.body).rrsets) {
          if (rr.changetype === "DELETE") sets.delete(rr.name);
          else if (rr.records.some((r: { content: string }) => !r.content.startsWith('"')))
            return reply(res, 422, {
              error: `Record ${rr.name}/TXT '${rr.records[0].content}': Not in expected format`,
            });
          else sets.set(rr.name, { ttl: rr.ttl, records: rr.records });
        }
        return reply(res, 204);
      }
      return reply(res, 405);
    };
  }

  const provider = (key = KEY, apiUrl = `${fake.base}/`) =>
    powerdnsProvider.create({ apiUrl, apiKey: key, serverId: "localhost" }, { logger: silentLogger });

  test("present walks up to the zone, reads the set, PATCHes it; every request carries the key", async () => {
    pdnsLike();
    await provider().present(rec("v1"));
    assert.deepEqual(
      fake.requests.map((r) => `${r.method} ${r.url}`),
      [
        "GET /api/v1/servers/localhost/zones?zone=_acme-challenge.www.example.com.",
        "GET /api/v1/servers/localhost/zones?zone=www.example.com.",
        "GET /api/v1/servers/localhost/zones?zone=example.com.",
        "GET /api/v1/servers/localhost/zones/example.com.?rrset_name=_acme-challenge.www.example.com.&rrset_type=TXT",
        "PATCH /api/v1/servers/localhost/zones/example.com.",
      ],
    );
    for (const r of fake.requests) assert.equal(r.headers["x-api-key"], KEY);
    assert.deepEqual(JSON.parse(fake.requests[4]?.body ?? ""), {
      rrsets: [
        {
          name: "_acme-challenge.www.example.com.",
          type: "TXT",
          ttl: PDNS_TTL,
          changetype: "REPLACE",
          records: [{ content: '"v1"', disabled: false }],
        },
      ],
    });
  });

  test("a name and its wildcard at once: both values end up in the set (changes go one at a time)", async () => {
    pdnsLike();
    const p = provider();
    await Promise.all([p.present(rec("apex")), p.present(rec("wild"))]);
    assert.deepEqual(
      sets.get("_acme-challenge.www.example.com.")?.records.map((r) => r.content),
      ['"apex"', '"wild"'],
    );
    await Promise.all([p.cleanup(rec("apex")), p.cleanup(rec("wild"))]);
    assert.equal(sets.size, 0, "the last value went with a DELETE");
    const patches = fake.requests
      .filter((r) => r.method === "PATCH")
      .map((r) => JSON.parse(r.body).rrsets[0].changetype);
    assert.deepEqual(patches, ["REPLACE", "REPLACE", "REPLACE", "DELETE"]);
    assert.equal(
      fake.requests.filter((r) => r.url.includes("?zone=")).length,
      3,
      "the zone is looked up once",
    );
  });

  test("a primary zone: each change is followed by a NOTIFY; one PowerDNS did not queue is only a warning", async () => {
    for (const kind of ["Master", "Primary"]) {
      pdnsLike(kind);
      await provider().present(rec("v1"));
      assert.deepEqual(
        fake.requests.slice(-2).map((r) => `${r.method} ${r.url}`),
        [
          "PATCH /api/v1/servers/localhost/zones/example.com.",
          "PUT /api/v1/servers/localhost/zones/example.com./notify",
        ],
      );
    }
    pdnsLike("Master", 500);
    const warnings: string[] = [];
    const p = powerdnsProvider.create(
      { apiUrl: fake.base, apiKey: KEY, serverId: "localhost" },
      { logger: { ...silentLogger, warn: (m) => warnings.push(m) } },
    );
    await p.present(rec("v1"));
    assert.deepEqual(
      sets.get("_acme-challenge.www.example.com.")?.records.map((r) => r.content),
      ['"v1"'],
    );
    assert.match(warnings.join("\n"), /PowerDNS did not queue a NOTIFY of zone example\.com\. .*HTTP 500/);
    pdnsLike("Native");
    await provider().present(rec("v1"));
    assert.equal(fake.requests.filter((r) => r.method === "PUT").length, 0, "no NOTIFY for a native zone");
  });

  test("cleanup of a value that is gone sends no PATCH", async () => {
    pdnsLike();
    sets.set("_acme-challenge.www.example.com.", {
      ttl: 60,
      records: [{ content: '"other"', disabled: false }],
    });
    await provider().cleanup(rec("v1"));
    assert.equal(fake.requests.filter((r) => r.method === "PATCH").length, 0);
  });

  test("a wrong key: ApiError with PowerDNS's answer and the credentials hint, the key not in it", async () => {
    pdnsLike();
    await assert.rejects(provider("wrong-key-value").present(rec("v1")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(
        e.message,
        /^PowerDNS refused to list zones named _acme-challenge\.www\.example\.com\. \(HTTP 401\): Unauthorized$/,
      );
      assert.match(
        e.hint ?? "",
        /^Check the API key \(PDNS_API_KEY, or wile config --dns-credential powerdns\.apiKey\)/,
      );
      assert.ok(!`${e.message}${e.hint}`.includes("wrong-key-value"));
      return true;
    });
  });

  test("a wrong server id (HTTP 404): the URL and server id to check", async () => {
    pdnsLike();
    const p = powerdnsProvider.create(
      { apiUrl: fake.base, apiKey: KEY, serverId: "ns-other" },
      { logger: silentLogger },
    );
    await assert.rejects(p.present(rec("v1")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(e.message, /\(HTTP 404\): Not Found$/);
      assert.match(e.hint ?? "", /PDNS_API_URL.*server id \(ns-other; PDNS_SERVER_NAME/);
      assert.equal(
        fake.requests.at(-1)?.url,
        "/api/v1/servers/ns-other/zones?zone=_acme-challenge.www.example.com.",
      );
      return true;
    });
  });

  test("no zone: the names tried and what to check", async () => {
    pdnsLike();
    await assert.rejects(provider().present(rec("v1", "_acme-challenge.example.org")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(
        e.message,
        /^PowerDNS at http:\/\/127\.0\.0\.1:\d+ \(server localhost\) has no zone holding _acme-challenge\.example\.org\.$/,
      );
      assert.match(e.hint ?? "", /Tried _acme-challenge\.example\.org\., example\.org\., org\./);
      return true;
    });
  });

  test("a refused PATCH quotes PowerDNS's error field", async () => {
    pdnsLike();
    fake.route = ((inner) => (req, res) => {
      if (req.method === "PATCH")
        return reply(res, 422, {
          error: "RRset _acme-challenge.www.example.com. IN TXT: Conflicts with pre-existing RRset",
        });
      inner(req, res);
    })(fake.route);
    await assert.rejects(
      provider().present(rec("v1")),
      /PowerDNS refused to add TXT v1 at _acme-challenge\.www\.example\.com\. in zone example\.com\. \(HTTP 422\): RRset .* Conflicts with pre-existing RRset$/,
    );
  });
});
