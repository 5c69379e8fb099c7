/**
 * The rfc2136 provider's settings: where the key comes from (a BIND key file, or lego's
 * RFC2136_TSIG_* variables, or the home's config), what renewal.json keeps (never the secret), and
 * the usage errors for a key file that is unreadable, malformed or readable by every user. The
 * updates themselves are tested against BIND9 (test/e2e/dns-rfc2136*.test.ts).
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { allProviderOptions, dnsConfigsFromOptions } from "../../../src/cli/dns-options";
import { parseOptions } from "../../../src/cli/options";
import { readProviderSettings } from "../../../src/dns/provider";
import { readKeyFile, rfc2136Provider } from "../../../src/dns/providers/rfc2136";
import { UsageError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { SettingError } from "../../../src/util/settings";

const dir = mkdtempSync(join(tmpdir(), "wile-unit-rfc2136-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = Buffer.alloc(32, 7).toString("base64");

function keyFile(name: string, text: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

const good = keyFile("good.key", `key "k1" {\n\talgorithm hmac-sha512;\n\tsecret "${SECRET}";\n};\n`);

const read = (given: Record<string, unknown>, env: Record<string, string> = {}, config = {}) =>
  readProviderSettings(rfc2136Provider, given, { env, config }, (k) => `"${k}"`);

describe("rfc2136 settings", () => {
  test("a key file: renewal.json keeps its path, the server, nothing else given", () => {
    const r = read({ server: "ns1.example.test:5353", tsigKey: good });
    assert.deepEqual(r.stored, { provider: "rfc2136", server: "ns1.example.test:5353", tsigKey: good });
    const p = rfc2136Provider.create(r.values as never, { logger: silentLogger });
    assert.equal(p.describe(), "rfc2136 (ns1.example.test:5353, key k1)");
  });

  test("lego's variables: the secret is used but never stored; the algorithm as lego writes it", () => {
    const env = {
      RFC2136_NAMESERVER: "192.0.2.1",
      RFC2136_TSIG_KEY: "k1.",
      RFC2136_TSIG_SECRET: SECRET,
      RFC2136_TSIG_ALGORITHM: "HMAC-SHA512.",
      RFC2136_DNS_TIMEOUT: "3",
    };
    const r = read({}, env);
    assert.equal(r.values.tsigSecret, SECRET);
    assert.deepEqual(r.stored, {
      provider: "rfc2136",
      server: "192.0.2.1",
      tsigName: "k1.",
      tsigAlgorithm: "hmac-sha512",
      timeout: 3,
    });
    assert.ok(!JSON.stringify(r.stored).includes(SECRET));
    const p = rfc2136Provider.create(r.values as never, { logger: silentLogger });
    assert.equal(p.describe(), "rfc2136 (192.0.2.1:53, key k1)");
    assert.ok(!p.describe().includes(SECRET));
  });

  test("the secret from the home's config, the rest from renewal.json", () => {
    const r = read({ server: "192.0.2.1", tsigName: "k1" }, {}, { tsigSecret: SECRET });
    assert.equal(r.values.tsigSecret, SECRET);
    assert.ok(!("tsigSecret" in r.stored));
  });

  test("no key at all: unsigned updates", () => {
    const r = read({ server: "192.0.2.1" });
    const p = rfc2136Provider.create(r.values as never, { logger: silentLogger });
    assert.equal(p.describe(), "rfc2136 (192.0.2.1:53, unsigned)");
  });

  test("inconsistent or bad settings are SettingErrors that never quote the secret", () => {
    const cases: [Record<string, unknown>, Record<string, string>, RegExp][] = [
      [{}, {}, /is missing/],
      [{ server: "ns1:99999" }, {}, /HOST or HOST:PORT/],
      [{ server: "ns1", tsigKey: good }, { RFC2136_TSIG_SECRET: SECRET, RFC2136_TSIG_KEY: "k1" }, /use one/],
      [{ server: "ns1" }, { RFC2136_TSIG_SECRET: SECRET }, /needs the key's name/],
      [{ server: "ns1", tsigName: "k1" }, {}, /wile config --dns-credential rfc2136\.tsigSecret/],
      [{ server: "ns1", tsigKey: good, tsigAlgorithm: "hmac-sha256" }, {}, /goes with a secret/],
      [
        { server: "ns1", tsigName: "k", tsigAlgorithm: "hmac-md5" },
        { RFC2136_TSIG_SECRET: SECRET },
        /hmac-sha256 or hmac-sha512/,
      ],
      [{ server: "ns1", tsigName: "k" }, { RFC2136_TSIG_SECRET: "c2hvcnQ=" }, /at least 16 bytes/],
    ];
    for (const [given, env, pattern] of cases) {
      assert.throws(
        () => read(given, env),
        (e: unknown) =>
          e instanceof SettingError && pattern.test(e.message) && !e.message.includes("c2hvcnQ="),
        JSON.stringify(given),
      );
    }
  });

  test("the secret has no command-line option (argv is visible in ps)", () => {
    const names = allProviderOptions().map((o) => o.name);
    assert.ok(names.includes("rfc2136-server") && names.includes("rfc2136-tsig-key"));
    assert.ok(!names.some((n) => n.startsWith("rfc2136-") && n.includes("secret")), names.join(" "));
    assert.throws(
      () => parseOptions(["--rfc2136-tsig-secret", SECRET], allProviderOptions()),
      /unknown option --rfc2136-tsig-secret/,
    );
  });

  test("wile issue's check reads the home's config too", () => {
    const opts = parseOptions(
      ["--rfc2136-server", "192.0.2.1", "--rfc2136-tsig-name", "k1"],
      allProviderOptions(),
    );
    assert.throws(() => dnsConfigsFromOptions(opts, ["rfc2136"], {}), /rfc2136\.tsigSecret|--dns-credential/);
    const out = dnsConfigsFromOptions(opts, ["rfc2136"], {}, undefined, { rfc2136: { tsigSecret: SECRET } });
    assert.deepEqual(out.get("rfc2136"), { provider: "rfc2136", server: "192.0.2.1", tsigName: "k1" });
  });
});

describe("rfc2136 key files: usage errors before anything is contacted", () => {
  const usage = (pattern: RegExp) => (e: unknown) => e instanceof UsageError && pattern.test(e.message);

  test("readable by every user: refused, with the chmod to run", () => {
    const open = keyFile("open.key", `key "k1" { algorithm hmac-sha256; secret "${SECRET}"; };`, 0o644);
    assert.throws(() => readKeyFile(open), usage(/readable by every user of this host \(mode 0644\)/));
    try {
      readKeyFile(open);
    } catch (e) {
      assert.match((e as UsageError).hint ?? "", /chmod 600/);
    }
    // Group-readable (root:bind 0640) is fine.
    const group = keyFile("group.key", `key "k1" { algorithm hmac-sha256; secret "${SECRET}"; };`, 0o640);
    assert.equal(readKeyFile(group).name, "k1");
  });

  test("missing, malformed, another algorithm", () => {
    assert.throws(() => readKeyFile(join(dir, "nope.key")), usage(/cannot read the TSIG key file .*ENOENT/));
    const bad = keyFile("bad.key", "this is not a key file\n");
    assert.throws(() => readKeyFile(bad), usage(/no key statement found/));
    const md5 = keyFile("md5.key", `key "k1" { algorithm hmac-md5; secret "${SECRET}"; };`);
    assert.throws(() => readKeyFile(md5), usage(/uses hmac-md5/));
    const r = read({ server: "192.0.2.1", tsigKey: bad });
    assert.throws(
      () => rfc2136Provider.create(r.values as never, { logger: silentLogger }),
      usage(/no key statement/),
    );
  });

  test("several keys: --rfc2136-tsig-name picks one", () => {
    const two = keyFile(
      "two.key",
      `key "a" { algorithm hmac-sha256; secret "${SECRET}"; };\nkey "b" { algorithm hmac-sha512; secret "${SECRET}"; };`,
    );
    assert.throws(() => readKeyFile(two), usage(/holds 2 keys/));
    assert.equal(readKeyFile(two, "b").algorithm, "hmac-sha512");
  });
});
