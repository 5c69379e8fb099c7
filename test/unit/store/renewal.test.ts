import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseRenewalConfig, type RenewalConfig, serializeRenewalConfig } from "../../../src/store/renewal";
import { WileError } from "../../../src/util/errors";

const FILE = "/h/certs/example.com/renewal.json";
const good: RenewalConfig = {
  version: 1,
  name: "example.com",
  identifiers: [
    { type: "dns", value: "example.com" },
    { type: "ip", value: "192.0.2.1" },
  ],
  challenge: { type: "http-01", webroots: { "example.com": "/var/www", "192.0.2.1": "/var/www" } },
  keyType: "ec-256",
  server: "https://acme-v02.api.letsencrypt.org/directory",
  caBundle: "/etc/ca.pem",
  account: "default",
  email: ["a@example.com"],
  preferredChain: "ISRG Root X1",
  mustStaple: false,
  preflight: true,
  resolve: ["example.com:80:127.0.0.1"],
  reuseKey: false,
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-02T00:00:00.000Z",
  deploy: [{ kind: "later" }],
};

function expectFieldError(mutate: (c: Record<string, unknown>) => void, field: string): void {
  const c = structuredClone(good) as unknown as Record<string, unknown>;
  mutate(c);
  assert.throws(
    () => parseRenewalConfig(JSON.stringify(c), FILE),
    (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.ok(e.message.includes(FILE), e.message);
      assert.ok(e.message.includes(`"${field}"`), `${e.message} should name ${field}`);
      assert.ok(e.hint?.includes(field));
      return true;
    },
  );
}

describe("renewal.json", () => {
  test("round trip: serialize is pretty with a trailing newline and parses back equal", () => {
    const text = serializeRenewalConfig(good);
    assert.ok(text.endsWith("}\n"));
    assert.ok(text.includes('\n  "name": "example.com"'));
    assert.deepEqual(parseRenewalConfig(text, FILE), good);
    const { caBundle: _c, preferredChain: _p, ...minimal } = good;
    assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(minimal), FILE), minimal);
  });

  test("dns-01 names: a wildcard and its base name with a provider each, next to a webroot name", () => {
    const mixed: RenewalConfig = {
      ...good,
      name: "_.example.com",
      identifiers: [
        { type: "dns", value: "*.example.com" },
        { type: "dns", value: "example.com" },
        { type: "ip", value: "192.0.2.1" },
      ],
      challenge: {
        type: "mixed",
        webroots: { "192.0.2.1": "/var/www" },
        dns: {
          "*.example.com": { provider: "exec", command: "/bin/hook" },
          "example.com": { provider: "exec", command: "/bin/hook" },
        },
      },
    };
    assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(mixed), FILE), mixed);
  });

  test("standalone http-01 names (an IP address too) round-trip next to a webroot name; wrong ones name their field", () => {
    const sa: RenewalConfig = {
      ...good,
      challenge: {
        type: "http-01",
        webroots: {},
        standalone: { names: ["example.com", "192.0.2.1"], port: 8080, address: "2001:db8::1" },
      },
    };
    assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(sa), FILE), sa);
    const mixed: RenewalConfig = {
      ...good,
      challenge: {
        type: "http-01",
        webroots: { "192.0.2.1": "/var/www" },
        standalone: { names: ["example.com"], port: 80 },
      },
    };
    assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(mixed), FILE), mixed);
    const withStandalone = (standalone: unknown) => (c: Record<string, unknown>) => {
      c.challenge = { type: "http-01", webroots: { "192.0.2.1": "/var/www" }, standalone };
    };
    expectFieldError(withStandalone([]), "challenge.standalone");
    expectFieldError(withStandalone({ names: [], port: 80 }), "challenge.standalone.names");
    expectFieldError(withStandalone({ names: ["*.example.com"], port: 80 }), "challenge.standalone.names");
    expectFieldError(
      withStandalone({ names: ["example.com", "192.0.2.1"], port: 80 }),
      "challenge.standalone.names",
    );
    expectFieldError(withStandalone({ names: ["example.com"], port: 0 }), "challenge.standalone.port");
    expectFieldError(withStandalone({ names: ["example.com"], port: "80" }), "challenge.standalone.port");
    expectFieldError(
      withStandalone({ names: ["example.com"], port: 80, address: "host" }),
      "challenge.standalone.address",
    );
    expectFieldError((c) => {
      c.challenge = { type: "http-01", webroots: {}, standalone: { names: ["example.com"], port: 80 } };
    }, "challenge.webroots.192.0.2.1");
  });

  test("tls-alpn-01 names round-trip with the listener's port and address; wrong ones name their field", () => {
    const alpn: RenewalConfig = {
      ...good,
      challenge: {
        type: "mixed",
        webroots: { "example.com": "/var/www" },
        alpn: { names: ["192.0.2.1"], port: 8443, address: "127.0.0.1" },
      },
    };
    assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(alpn), FILE), alpn);
    const only = {
      ...good,
      challenge: {
        type: "tls-alpn-01",
        webroots: {},
        alpn: { names: ["example.com", "192.0.2.1"], port: 443 },
      },
    };
    assert.deepEqual(parseRenewalConfig(JSON.stringify(only), FILE).challenge, only.challenge);
    const set = (alpnValue: unknown) => (c: Record<string, unknown>) => {
      c.challenge = { type: "tls-alpn-01", webroots: {}, alpn: alpnValue };
    };
    expectFieldError(set({ names: ["example.com", "192.0.2.1"], port: 0 }), "challenge.alpn.port");
    expectFieldError(
      set({ names: ["example.com", "192.0.2.1"], port: 443, address: "localhost" }),
      "challenge.alpn.address",
    );
    expectFieldError(set({ names: [], port: 443 }), "challenge.alpn.names");
    expectFieldError(set({ names: ["example.com"], port: 443 }), "challenge.webroots.192.0.2.1");
    expectFieldError((c) => {
      c.challenge = {
        type: "mixed",
        webroots: { "example.com": "/w", "192.0.2.1": "/w" },
        alpn: { names: ["example.com"], port: 443 },
      };
    }, "challenge.alpn.names");
  });

  test("dns-01 check settings and aliases round-trip; wrong ones name their field", () => {
    const withDns = (extra: Record<string, unknown>) => ({
      ...good,
      identifiers: [{ type: "dns", value: "example.com" }],
      challenge: {
        type: "dns-01",
        webroots: {},
        dns: { "example.com": { provider: "exec", command: "/bin/hook" } },
        ...extra,
      },
    });
    const ok = withDns({
      dnsCheck: { timeout: 60, resolvers: ["127.0.0.1:5353", "[::1]:53"] },
      dnsAlias: { "example.com": "alias.example" },
    }) as unknown as RenewalConfig;
    assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(ok), FILE), ok);
    const skip = withDns({ dnsCheck: { timeout: 180, skip: true } }) as unknown as RenewalConfig;
    assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(skip), FILE), skip);
    const bad: [Record<string, unknown>, string][] = [
      [{ dnsCheck: "fast" }, "challenge.dnsCheck"],
      [{ dnsCheck: { timeout: 0 } }, "challenge.dnsCheck.timeout"],
      [{ dnsCheck: { timeout: 1.5 } }, "challenge.dnsCheck.timeout"],
      [{ dnsCheck: { timeout: 60, resolvers: [] } }, "challenge.dnsCheck.resolvers"],
      [{ dnsCheck: { timeout: 60, resolvers: ["ns1:99999"] } }, "challenge.dnsCheck.resolvers[0]"],
      [{ dnsCheck: { timeout: 60, skip: "yes" } }, "challenge.dnsCheck.skip"],
      [{ dnsAlias: ["alias.example"] }, "challenge.dnsAlias"],
      [{ dnsAlias: { "example.com": "not a name" } }, "challenge.dnsAlias.example.com"],
      [{ dnsAlias: { "www.example.com": "alias.example" } }, "challenge.dnsAlias.www.example.com"],
    ];
    for (const [extra, field] of bad) {
      expectFieldError((c) => Object.assign(c, withDns(extra)), field);
    }
  });

  test("invalid JSON names the file", () => {
    assert.throws(
      () => parseRenewalConfig("{", FILE),
      (e: unknown) => e instanceof WileError && e.message.includes(FILE),
    );
  });

  const cases: Array<[string, (c: Record<string, unknown>) => void]> = [
    ["version", (c) => (c.version = 2)],
    ["name", (c) => (c.name = 3)],
    ["name", (c) => delete c.name],
    ["identifiers", (c) => (c.identifiers = [])],
    ["identifiers[0].type", (c) => (c.identifiers = [{ type: "email", value: "x" }])],
    ["identifiers[1].value", (c) => ((c.identifiers as unknown[])[1] = { type: "ip", value: 5 })],
    ["challenge", (c) => (c.challenge = "http-01")],
    ["challenge.type", (c) => ((c.challenge as Record<string, unknown>).type = "tls-sni-01")],
    ["challenge.dns", (c) => ((c.challenge as Record<string, unknown>).dns = [])],
    [
      "challenge.dns.example.com.provider",
      (c) => ((c.challenge as Record<string, unknown>).dns = { "example.com": { command: "x" } }),
    ],
    [
      "challenge.dns.192.0.2.1",
      (c) => ((c.challenge as Record<string, unknown>).dns = { "192.0.2.1": { provider: "exec" } }),
    ],
    [
      "challenge.dns.*.example.com",
      (c) => {
        c.identifiers = [{ type: "dns", value: "*.example.com" }];
        (c.challenge as Record<string, unknown>).webroots = { "*.example.com": "/w" };
      },
    ],
    ["challenge.webroots", (c) => ((c.challenge as Record<string, unknown>).webroots = [])],
    [
      "challenge.webroots.example.com",
      (c) => ((c.challenge as { webroots: object }).webroots = { "192.0.2.1": "/w" }),
    ],
    [
      "challenge.webroots.192.0.2.1",
      (c) => ((c.challenge as { webroots: object }).webroots = { "example.com": "/w", "192.0.2.1": "rel" }),
    ],
    ["keyType", (c) => (c.keyType = "ed25519")],
    ["server", (c) => (c.server = "ftp://x")],
    ["caBundle", (c) => (c.caBundle = false)],
    ["account", (c) => (c.account = "")],
    ["email", (c) => (c.email = "a@example.com")],
    ["preferredChain", (c) => (c.preferredChain = 1)],
    ["mustStaple", (c) => (c.mustStaple = "no")],
    ["preflight", (c) => delete c.preflight],
    ["resolve", (c) => (c.resolve = [1])],
    ["reuseKey", (c) => (c.reuseKey = 0)],
    ["createdAt", (c) => (c.createdAt = "yesterday")],
    ["updatedAt", (c) => delete c.updatedAt],
    ["deploy", (c) => (c.deploy = {})],
  ];
  for (const [field, mutate] of cases) {
    test(`a bad "${field}" gives an error naming it`, () => expectFieldError(mutate, field));
  }
});
