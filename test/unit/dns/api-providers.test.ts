/**
 * The HTTP API DNS providers (src/dns/providers/{cloudflare,hetzner,digitalocean,desec,acme-dns}.ts)
 * against their doubles (test/helpers/dns-api-doubles.ts; plain HTTP on loopback here, HTTPS in
 * test/e2e/dns-api.test.ts): zone lookup (a name deeper than its zone, the most specific of nested
 * zones), two values at one name, cleanup of exactly ours, pagination, request shapes, the API's
 * refusals turned into messages without the token, 429 with Retry-After.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { apiUrlProblem, unquoteTxt, zoneCandidates } from "../../../src/dns/api-common";
import { ApiError, RATE_LIMIT_RETRIES } from "../../../src/dns/http-api";
import {
  type DnsProvider,
  type DnsProviderKind,
  type DnsRecord,
  readProviderSettings,
} from "../../../src/dns/provider";
import { dnsProvider } from "../../../src/dns/registry";
import { silentLogger } from "../../../src/util/log";
import { SettingError } from "../../../src/util/settings";
import {
  type ApiDouble,
  type DoubleOptions,
  startAcmeDnsDouble,
  startCloudflareDouble,
  startDesecDouble,
  startDigitalOceanDouble,
  startHetznerDouble,
} from "../../helpers/dns-api-doubles";

const TOKEN = "tok-Secret-1234567890abcdef";
const doubles: ApiDouble[] = [];
after(async () => {
  for (const d of doubles) await d.close();
});

function rec(fqdn: string, value: string): DnsRecord {
  return { fqdn, value, identifier: fqdn.replace(/^_acme-challenge\./, ""), token: "t" };
}
/** A 43-character value like dns01TxtValue's. */
const val = (tag: string) => `${tag}${"x".repeat(43 - tag.length)}`;

function make(kind: DnsProviderKind, given: Record<string, unknown>): DnsProvider {
  const { values } = readProviderSettings(kind, given, {}, (k) => k);
  return kind.create(values as never, { logger: silentLogger });
}

interface Api {
  name: string;
  start(o: DoubleOptions): Promise<ApiDouble>;
  authorization: string;
  /** What the provider's message quotes from the API's refusal of a wrong token. */
  refusal: RegExp;
  refusalStatus: number;
  /** Paged list of records at a name. */
  pages: boolean;
  /** The first environment variable of its token. */
  tokenVar: string;
}

const APIS: Api[] = [
  {
    name: "cloudflare",
    tokenVar: "CLOUDFLARE_DNS_API_TOKEN",
    start: startCloudflareDouble,
    authorization: `Bearer ${TOKEN}`,
    refusal: /Cloudflare refused to find the zone of .* \(HTTP 403\): Invalid access token \(9109\)/,
    refusalStatus: 403,
    pages: true,
  },
  {
    name: "hetzner",
    tokenVar: "HETZNER_API_TOKEN",
    start: startHetznerDouble,
    authorization: `Bearer ${TOKEN}`,
    refusal: /Hetzner refused to find the zone of .* \(HTTP 401\): unable to authenticate \(unauthorized\)/,
    refusalStatus: 401,
    pages: false,
  },
  {
    name: "digitalocean",
    tokenVar: "DO_AUTH_TOKEN",
    start: startDigitalOceanDouble,
    authorization: `Bearer ${TOKEN}`,
    refusal:
      /DigitalOcean refused to find the domain of .* \(HTTP 401\): Unable to authenticate you \(Unauthorized\)/,
    refusalStatus: 401,
    pages: true,
  },
  {
    name: "desec",
    tokenVar: "DESEC_TOKEN",
    start: startDesecDouble,
    authorization: `Token ${TOKEN}`,
    refusal: /deSEC refused to find the domain of .* \(HTTP 401\): Invalid token\./,
    refusalStatus: 401,
    pages: false,
  },
];

for (const api of APIS) {
  describe(`${api.name} against its double`, () => {
    const kind = dnsProvider(api.name) as DnsProviderKind;
    const start = async (o: Partial<DoubleOptions> = {}) => {
      const d = await api.start({
        token: TOKEN,
        zones: ["example.test", "sub.example.test", "other.test"],
        ...o,
      });
      doubles.push(d);
      return { d, p: make(kind, { token: TOKEN, api: d.base }) };
    };

    test("a name deeper than its zone, two values at one name, cleanup removes only ours", async () => {
      const { d, p } = await start();
      const fqdn = "_acme-challenge.a.b.example.test";
      const [ours1, ours2, foreign] = [val("one"), val("two"), val("foreign")];
      await Promise.all([p.present(rec(fqdn, ours1)), p.present(rec(fqdn, ours2))]);
      await p.present(rec(fqdn, foreign));
      assert.deepEqual(d.txt(fqdn).sort(), [foreign, ours1, ours2].sort());
      await p.cleanup(rec(fqdn, ours1));
      await p.cleanup(rec(fqdn, ours2));
      assert.deepEqual(d.txt(fqdn), [foreign]);
      await p.cleanup(rec(fqdn, foreign));
      assert.deepEqual(d.txt(fqdn), []);
      // Every request carries the token in its header, none in its URL.
      assert.ok(d.requests.length > 0);
      for (const r of d.requests) {
        assert.equal(r.headers.authorization, api.authorization, `${r.method} ${r.url}`);
        assert.ok(!r.url.includes(TOKEN));
      }
    });

    test("the most specific zone of nested zones holds the record; the apex of a zone works", async () => {
      const { d, p } = await start();
      await p.present(rec("_acme-challenge.x.sub.example.test", val("nested")));
      await p.present(rec("_acme-challenge.example.test", val("apex")));
      assert.deepEqual(d.txt("_acme-challenge.x.sub.example.test"), [val("nested")]);
      assert.deepEqual(d.txt("_acme-challenge.example.test"), [val("apex")]);
      const writes = d.requests.filter((r) => r.method !== "GET");
      assert.ok(writes.length >= 2);
      // The nested name went to sub.example.test, not example.test.
      const nestedWrite = writes[0] as (typeof writes)[number];
      assert.match(`${nestedWrite.url} ${nestedWrite.body}`, /sub\.example\.test|4712/);
      await p.cleanup(rec("_acme-challenge.x.sub.example.test", val("nested")));
      await p.cleanup(rec("_acme-challenge.example.test", val("apex")));
      assert.deepEqual(d.txt("_acme-challenge.example.test"), []);
    });

    test("a wrong token: the API's refusal, its status, no token in the message", async () => {
      const { d } = await start();
      const wrong = "wrong-Token-0987654321fedcba";
      const p = make(kind, { token: wrong, api: d.base });
      const err = await p.present(rec("_acme-challenge.example.test", val("w"))).then(
        () => assert.fail("present succeeded"),
        (e) => e,
      );
      assert.ok(err instanceof ApiError, String(err));
      assert.equal(err.status, api.refusalStatus);
      assert.match(err.message, api.refusal);
      assert.match(err.hint ?? "", new RegExp(`Check the token in ${api.tokenVar}`));
      assert.ok(!`${err.message} ${err.hint}`.includes(wrong));
      assert.deepEqual(d.txt("_acme-challenge.example.test"), []);
    });

    test("a name in no zone of the account: a clear error, nothing written", async () => {
      const { d, p } = await start();
      await assert.rejects(p.present(rec("_acme-challenge.example.org", val("n"))), (e: Error) => {
        assert.match(e.message, /no (zone|domain) holding _acme-challenge\.example\.org/);
        return true;
      });
      assert.ok(d.requests.every((r) => r.method === "GET"));
    });

    test("429 with Retry-After is retried; a lasting one is a clear error", async () => {
      const { d, p } = await start();
      const limited = {
        status: 429,
        body: { detail: "Request was throttled." },
        headers: { "Retry-After": "0" },
      };
      d.failNext.push(limited);
      await p.present(rec("_acme-challenge.example.test", val("r")));
      assert.deepEqual(d.txt("_acme-challenge.example.test"), [val("r")]);
      for (let i = 0; i <= RATE_LIMIT_RETRIES; i++) d.failNext.push(limited);
      const err = await p.cleanup(rec("_acme-challenge.example.test", val("r"))).then(
        () => assert.fail("cleanup succeeded"),
        (e) => e,
      );
      assert.equal(err.status, 429);
      assert.match(err.hint, /limits the rate of requests and asked to wait 0 s; wile retried 3 times/);
      assert.equal(d.failNext.length, 0);
    });

    if (api.pages) {
      test("the record list pages: cleanup finds our value on a later page", async () => {
        const { d, p } = await start({ maxPerPage: 1 });
        const fqdn = "_acme-challenge.example.test";
        for (const v of ["p1", "p2", "p3"]) await p.present(rec(fqdn, val(v)));
        await p.cleanup(rec(fqdn, val("p3")));
        assert.deepEqual(d.txt(fqdn), [val("p1"), val("p2")]);
        assert.ok(
          d.requests.some((r) => r.method === "GET" && /[?&]page=3/.test(r.url)),
          "page 3 was read",
        );
      });
    }
  });
}

describe("request shapes", () => {
  test("cloudflare: POST dns_records with the full name and the bare value; zone id skips the lookup", async () => {
    const d = await startCloudflareDouble({ token: TOKEN, zones: ["example.test"] });
    doubles.push(d);
    const p = make(dnsProvider("cloudflare") as DnsProviderKind, { token: TOKEN, api: d.base });
    await p.present(rec("_acme-challenge.www.example.test", val("cf")));
    const lookups = d.requests.filter((r) => r.url.startsWith("/client/v4/zones?name="));
    assert.deepEqual(
      lookups.map((r) => r.url),
      ["/client/v4/zones?name=www.example.test", "/client/v4/zones?name=example.test"],
    );
    const post = d.requests.find((r) => r.method === "POST");
    assert.match(post?.url ?? "", /^\/client\/v4\/zones\/[0-9a-f]{32}\/dns_records$/);
    assert.deepEqual(JSON.parse(post?.body ?? ""), {
      type: "TXT",
      name: "_acme-challenge.www.example.test",
      content: val("cf"),
      ttl: 120,
    });
    const zoneId = (post?.url ?? "").split("/")[4] as string;
    const d2 = await startCloudflareDouble({ token: TOKEN, zones: ["example.test"] });
    doubles.push(d2);
    // Another double has other zone ids: with the one given, no lookup happens, and the id is used as is.
    const p2 = make(dnsProvider("cloudflare") as DnsProviderKind, { token: TOKEN, api: d2.base, zoneId });
    await assert.rejects(p2.present(rec("_acme-challenge.www.example.test", val("cf"))), /HTTP 404.*7003/);
    assert.ok(d2.requests.every((r) => !r.url.includes("zones?name")));
  });

  test("hetzner: rrset actions with the relative name and quoted values, the action followed", async () => {
    const d = await startHetznerDouble({ token: TOKEN, zones: ["example.test"] });
    doubles.push(d);
    const p = make(dnsProvider("hetzner") as DnsProviderKind, { token: TOKEN, api: d.base });
    await p.present(rec("_acme-challenge.www.example.test", val("hz")));
    const post = d.requests.find((r) => r.method === "POST");
    assert.equal(post?.url, "/v1/zones/4711/rrsets/_acme-challenge.www/TXT/actions/add_records");
    assert.deepEqual(JSON.parse(post?.body ?? ""), { ttl: 120, records: [{ value: `"${val("hz")}"` }] });
    assert.ok(
      d.requests.some((r) => r.url === "/v1/zones/actions/101"),
      "the running action was followed",
    );
    await p.cleanup(rec("_acme-challenge.www.example.test", val("hz")));
    const rm = d.requests.filter((r) => r.method === "POST")[1];
    assert.equal(rm?.url, "/v1/zones/4711/rrsets/_acme-challenge.www/TXT/actions/remove_records");
    assert.deepEqual(JSON.parse(rm?.body ?? ""), { records: [{ value: `"${val("hz")}"` }] });
  });

  test("digitalocean: records with the relative name, listed by full name, deleted by id", async () => {
    const d = await startDigitalOceanDouble({ token: TOKEN, zones: ["example.test"] });
    doubles.push(d);
    const p = make(dnsProvider("digitalocean") as DnsProviderKind, { token: TOKEN, api: d.base });
    await p.present(rec("_acme-challenge.www.example.test", val("do")));
    const post = d.requests.find((r) => r.method === "POST");
    assert.equal(post?.url, "/v2/domains/example.test/records");
    assert.deepEqual(JSON.parse(post?.body ?? ""), {
      type: "TXT",
      name: "_acme-challenge.www",
      data: val("do"),
      ttl: 30,
    });
    await p.cleanup(rec("_acme-challenge.www.example.test", val("do")));
    assert.ok(
      d.requests.some((r) =>
        r.url.startsWith("/v2/domains/example.test/records?type=TXT&name=_acme-challenge.www.example.test"),
      ),
    );
    assert.ok(
      d.requests.some(
        (r) => r.method === "DELETE" && /^\/v2\/domains\/example\.test\/records\/\d+$/.test(r.url),
      ),
    );
  });

  test("desec: owns_qname, POST a new RRset, PATCH to add and remove, an empty list deletes it", async () => {
    const d = await startDesecDouble({ token: TOKEN, zones: ["example.test"] });
    doubles.push(d);
    const p = make(dnsProvider("desec") as DnsProviderKind, { token: TOKEN, api: d.base });
    const fqdn = "_acme-challenge.www.example.test";
    await p.present(rec(fqdn, val("d1")));
    await p.present(rec(fqdn, val("d2")));
    await p.cleanup(rec(fqdn, val("d1")));
    await p.cleanup(rec(fqdn, val("d2")));
    const writes = d.requests
      .filter((r) => r.method !== "GET")
      .map((r) => [r.method, r.url, JSON.parse(r.body)]);
    const path = "/api/v1/domains/example.test/rrsets/_acme-challenge.www/TXT/";
    assert.deepEqual(writes, [
      [
        "POST",
        "/api/v1/domains/example.test/rrsets/",
        { subname: "_acme-challenge.www", type: "TXT", ttl: 3600, records: [`"${val("d1")}"`] },
      ],
      ["PATCH", path, { records: [`"${val("d1")}"`, `"${val("d2")}"`] }],
      ["PATCH", path, { records: [`"${val("d2")}"`] }],
      ["PATCH", path, { records: [] }],
    ]);
    assert.equal(d.requests[0]?.url, "/api/v1/domains/?owns_qname=_acme-challenge.www.example.test");
    assert.deepEqual(d.txt(fqdn), []);
  });
});

describe("edge cases", () => {
  test("a Retry-After beyond the bound is not waited for: the 429 at once, with the wait asked", async () => {
    const d = await startDesecDouble({ token: TOKEN, zones: ["example.test"] });
    doubles.push(d);
    const p = make(dnsProvider("desec") as DnsProviderKind, { token: TOKEN, api: d.base });
    d.failNext.push({
      status: 429,
      body: { detail: "Request was throttled." },
      headers: { "Retry-After": "120" },
    });
    const started = Date.now();
    await assert.rejects(p.present(rec("_acme-challenge.example.test", val("l"))), (e: ApiError) => {
      assert.equal(e.status, 429);
      assert.match(e.message, /deSEC refused to find the domain of .* \(HTTP 429\): Request was throttled\./);
      assert.match(e.hint ?? "", /asked to wait 120 s/);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
  });

  test("cloudflare: a value already there (81058, an identical record) counts as added", async () => {
    const d = await startCloudflareDouble({ token: TOKEN, zones: ["example.test"] });
    doubles.push(d);
    const p = make(dnsProvider("cloudflare") as DnsProviderKind, { token: TOKEN, api: d.base });
    await p.present(rec("_acme-challenge.example.test", val("same")));
    await p.present(rec("_acme-challenge.example.test", val("same")));
    assert.deepEqual(d.txt("_acme-challenge.example.test"), [val("same")]);
    await p.cleanup(rec("_acme-challenge.example.test", val("same")));
    assert.deepEqual(d.txt("_acme-challenge.example.test"), []);
  });

  test("hetzner: an action that ends in error is a WileError quoting it", async () => {
    const d = await startHetznerDouble({ token: TOKEN, zones: ["example.test"] });
    doubles.push(d);
    const p = make(dnsProvider("hetzner") as DnsProviderKind, { token: TOKEN, api: d.base });
    await p.present(rec("_acme-challenge.example.test", val("h1")));
    // The zone is known by now; the rrset read and the add_records action are answered here.
    d.failNext.push(
      { status: 404, body: { error: { code: "not_found", message: "rrset not found" } } },
      {
        status: 201,
        body: { action: { id: 9, status: "error", error: { code: "x", message: "zone is locked" } } },
      },
    );
    await assert.rejects(
      p.present(rec("_acme-challenge.example.test", val("h2"))),
      /Hetzner could not add the TXT record _acme-challenge\.example\.test: zone is locked/,
    );
  });
});

describe("acme-dns against its double", () => {
  const kind = dnsProvider("acme-dns") as DnsProviderKind;

  test("a name and its wildcard: both values served; a third is refused; wrong password: forbidden", async () => {
    const d = await startAcmeDnsDouble({ zones: ["auth.test"] });
    doubles.push(d);
    const reg = await d.register();
    assert.equal(reg.fulldomain, `${reg.subdomain}.auth.test`);
    const p = make(kind, {
      api: d.base,
      username: reg.username,
      password: reg.password,
      subdomain: reg.subdomain,
    });
    const fqdn = "_acme-challenge.example.test";
    await p.present(rec(fqdn, val("a1")));
    await p.present(rec(fqdn, val("a2")));
    assert.deepEqual(d.txt(reg.fulldomain), [val("a1"), val("a2")]);
    const post = d.requests.find((r) => r.url === "/update");
    assert.equal(post?.headers["x-api-user"], reg.username);
    assert.equal(post?.headers["x-api-key"], reg.password);
    assert.deepEqual(JSON.parse(post?.body ?? ""), { subdomain: reg.subdomain, txt: val("a1") });
    await assert.rejects(
      p.present(rec("_acme-challenge.other.test", val("a3"))),
      /keeps 2 TXT values per subdomain/,
    );
    assert.deepEqual(d.txt(reg.fulldomain), [val("a1"), val("a2")]);
    // acme-dns has no delete: cleanup sends nothing; afterwards there is room again.
    const before = d.requests.length;
    await p.cleanup(rec(fqdn, val("a1")));
    assert.equal(d.requests.length, before);
    await p.present(rec("_acme-challenge.other.test", val("a3")));
    assert.deepEqual(d.txt(reg.fulldomain), [val("a2"), val("a3")]);

    const wrong = "not-the-Password-1234567890";
    const bad = make(kind, {
      api: d.base,
      username: reg.username,
      password: wrong,
      subdomain: reg.subdomain,
    });
    await assert.rejects(bad.present(rec(fqdn, val("a4"))), (e: ApiError) => {
      assert.equal(e.status, 401);
      assert.match(
        e.message,
        /acme-dns refused to update the TXT record of subdomain .* \(HTTP 401\): forbidden/,
      );
      assert.match(e.hint ?? "", /ACMEDNS_PASSWORD/);
      assert.ok(!`${e.message} ${e.hint}`.includes(wrong));
      return true;
    });
  });
});

describe("settings", () => {
  test("tokens come from the variables lego and acme.sh users have, and are never stored", () => {
    const cases: Array<[string, string, Record<string, string>]> = [
      ["cloudflare", "CLOUDFLARE_DNS_API_TOKEN", {}],
      ["cloudflare", "CF_DNS_API_TOKEN", {}],
      ["cloudflare", "CF_Token", { CF_Zone_ID: "abc123" }],
      ["hetzner", "HETZNER_API_TOKEN", {}],
      ["hetzner", "HETZNER_TOKEN", {}],
      ["digitalocean", "DO_AUTH_TOKEN", {}],
      ["desec", "DESEC_TOKEN", {}],
      ["desec", "DEDYN_TOKEN", {}],
    ];
    for (const [name, variable, more] of cases) {
      const kind = dnsProvider(name) as DnsProviderKind;
      const r = readProviderSettings(kind, {}, { env: { [variable]: TOKEN, ...more } }, (k) => k);
      assert.equal(r.values.token, TOKEN, `${name} ${variable}`);
      assert.ok(!JSON.stringify(r.stored).includes(TOKEN), `${name} stores no token`);
      assert.equal(r.stored.provider, name);
      if (more.CF_Zone_ID) assert.equal(r.stored.zoneId, "abc123");
    }
    const acme = readProviderSettings(
      dnsProvider("acme-dns") as DnsProviderKind,
      {},
      {
        env: {
          ACMEDNS_BASE_URL: "https://auth.example.org",
          ACMEDNS_USERNAME: "u",
          ACMEDNS_PASSWORD: TOKEN,
          ACMEDNS_SUBDOMAIN: "s",
        },
      },
      (k) => k,
    );
    assert.deepEqual(acme.stored, {
      provider: "acme-dns",
      api: "https://auth.example.org",
      username: "u",
      subdomain: "s",
    });
  });

  test("a missing token is a SettingError naming it; the API address must be https (http only on loopback)", () => {
    assert.throws(
      () =>
        readProviderSettings(
          dnsProvider("cloudflare") as DnsProviderKind,
          {},
          {},
          (k) => `--cloudflare-${k}`,
        ),
      (e: SettingError) => e instanceof SettingError && e.key === "token",
    );
    assert.equal(apiUrlProblem("https://api.example.com/v1"), undefined);
    assert.equal(apiUrlProblem("http://127.0.0.1:8080"), undefined);
    assert.match(apiUrlProblem("http://auth.example.org") ?? "", /must be an https:\/\/ URL/);
    assert.match(apiUrlProblem("https://user:pw@api.example.com") ?? "", /credentials/);
    assert.match(apiUrlProblem("not a url") ?? "", /must be a URL/);
  });

  test("zone candidates and TXT quoting", () => {
    assert.deepEqual(zoneCandidates("_acme-challenge.A.example.com."), ["a.example.com", "example.com"]);
    assert.deepEqual(zoneCandidates("_acme-challenge.example.com"), ["example.com"]);
    assert.deepEqual(zoneCandidates("_acme-challenge.com"), []);
    assert.equal(unquoteTxt('"abc"'), "abc");
    assert.equal(unquoteTxt('"ab" "c"'), "abc");
    assert.equal(unquoteTxt("abc"), "abc");
  });
});
