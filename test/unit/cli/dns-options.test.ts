import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  allProviderOptions,
  DNS_CHECK_OPTIONS,
  dnsCheckFromOptions,
  dnsConfigsFromOptions,
} from "../../../src/cli/dns-options";
import { parseOptions } from "../../../src/cli/options";
import { runMain } from "../../../src/main";
import { UsageError } from "../../../src/util/errors";

const home = mkdtempSync(join(tmpdir(), "wile-unit-dns-cli-"));
after(() => rmSync(home, { recursive: true, force: true }));

/** wile issue with a bad command line: exit 2 before anything is contacted (no CA is reachable here). */
async function issue(args: string[], env: Record<string, string> = {}) {
  let stderr = "";
  const code = await runMain(
    ["issue", "--home", home, "--server", "https://127.0.0.1:9/dir", ...args],
    { NO_COLOR: "1", ...env },
    {
      stdout: { write: () => {} },
      stderr: { write: (s: string) => (stderr += s) },
      stderrIsTTY: false,
      stdoutIsTTY: false,
    },
  );
  return { code, stderr };
}

describe("wile issue --dns: usage errors before anything is contacted", () => {
  test("a wildcard with a webroot points at --dns", async () => {
    const r = await issue(["-d", "*.example.com", "-w", home]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\*\.example\.com is a wildcard name; CAs validate wildcards only with DNS-01/);
    assert.match(r.stderr, /--dns exec --dns-exec/);
  });

  test("an unknown provider, a provider's flag without it, a provider without its settings", async () => {
    let r = await issue(["-d", "example.com", "--dns", "nsone"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown --dns provider "nsone"/);
    r = await issue(["-d", "example.com", "-w", home, "--dns-exec", "/bin/hook"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dns-exec belongs to the exec DNS provider, but no name uses --dns exec/);
    r = await issue(["-d", "example.com", "--dns", "exec"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dns exec needs --dns-exec CMD/);
    r = await issue([
      "-d",
      "example.com",
      "--dns",
      "exec",
      "--dns-exec",
      "/bin/hook",
      "--dns-exec-mode",
      "acme.sh",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dns-exec-mode "acme\.sh": must be lego or uacme/);
  });

  test("propagation options: bad values, and any of them without a --dns name", async () => {
    const dns = ["-d", "example.com", "--dns", "exec", "--dns-exec", "/bin/hook"];
    const cases: [string[], RegExp][] = [
      [[...dns, "--dns-timeout", "0"], /--dns-timeout "0" is not a whole number of seconds from 1 to 86400/],
      [[...dns, "--dns-timeout", "3m"], /--dns-timeout "3m" is not a whole number/],
      [[...dns, "--dns-resolvers", "127.0.0.1:99999"], /invalid DNS server "127\.0\.0\.1:99999"/],
      [
        [...dns, "--dns-resolvers", "127.0.0.1,,::1"],
        /--dns-resolvers "127\.0\.0\.1,,::1" has an empty entry/,
      ],
      [[...dns, "--dns-alias", "bad name"], /--dns-alias "bad name" is not a DNS name/],
      [
        [...dns, "--no-dns-check", "--dns-timeout", "5"],
        /--no-dns-check skips the wait that --dns-timeout bounds/,
      ],
      [
        ["-d", "example.com", "-w", home, "--dns-timeout", "5"],
        /--dns-timeout is about DNS records, but no name is proved with --dns/,
      ],
      [["-d", "example.com", "-w", home, "--no-dns-check"], /--no-dns-check is about DNS records/],
      [["-d", "example.com", "-w", home, "--dns-alias", "a.example"], /--dns-alias is about DNS records/],
    ];
    for (const [args, want] of cases) {
      const r = await issue(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, want);
    }
  });

  test("a name with neither -w nor --dns", async () => {
    const r = await issue(["-d", "example.com"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no webroot or DNS provider for example\.com/);
  });
});

describe("renewal.json entries from --dns flags", () => {
  test("the propagation check's settings: defaults written out, resolvers as given, the alias for every --dns name", () => {
    const parse = (args: string[]) => parseOptions(args, DNS_CHECK_OPTIONS);
    assert.deepEqual(dnsCheckFromOptions(parse([]), ["example.com"]), { dnsCheck: { timeout: 180 } });
    assert.deepEqual(dnsCheckFromOptions(parse([]), []), {});
    assert.deepEqual(
      dnsCheckFromOptions(
        parse([
          "--dns-timeout",
          "30",
          "--dns-resolvers",
          "127.0.0.1:5353, [::1]:53",
          "--dns-alias",
          "Alias.Example.",
        ]),
        ["example.com", "*.example.com"],
      ),
      {
        dnsCheck: { timeout: 30, resolvers: ["127.0.0.1:5353", "[::1]:53"] },
        dnsAlias: { "example.com": "alias.example", "*.example.com": "alias.example" },
      },
    );
    assert.deepEqual(dnsCheckFromOptions(parse(["--no-dns-check"]), ["example.com"]), {
      dnsCheck: { timeout: 180, skip: true },
    });
  });

  test("dns-persist-01 names take --dns-timeout, --dns-resolvers and --no-dns-check, never --dns-alias", () => {
    const parse = (args: string[]) => parseOptions(args, DNS_CHECK_OPTIONS);
    // Nothing given: nothing written (the persist check's own 60 s applies).
    assert.deepEqual(dnsCheckFromOptions(parse([]), [], ["example.com"]), {});
    assert.deepEqual(
      dnsCheckFromOptions(
        parse(["--dns-timeout", "20", "--dns-resolvers", "192.0.2.53"]),
        [],
        ["example.com"],
      ),
      { dnsCheck: { timeout: 20, resolvers: ["192.0.2.53"] } },
    );
    assert.throws(
      () => dnsCheckFromOptions(parse(["--dns-alias", "alias.example"]), [], ["example.com"]),
      (e: unknown) =>
        e instanceof UsageError &&
        /--dns-alias is about DNS records, but no name is proved with --dns$/.test(e.message),
    );
    assert.throws(
      () => dnsCheckFromOptions(parse(["--dns-timeout", "20"]), [], []),
      (e: unknown) =>
        e instanceof UsageError &&
        /no name is proved with --dns or --challenge dns-persist-01/.test(e.message),
    );
  });

  test("a missing secret names its variables and wile config --dns-credential", () => {
    const opts = parseOptions([], allProviderOptions());
    assert.throws(
      () => dnsConfigsFromOptions(opts, ["cloudflare"], {}),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message ===
          "--dns cloudflare needs cloudflare.token, from the environment (CLOUDFLARE_DNS_API_TOKEN, CF_DNS_API_TOKEN, CF_Token) or from this home's config" &&
        /wile config --dns-credential cloudflare\.token/.test(e.hint ?? ""),
    );
  });

  test("one entry per provider used, from its flags or lego's EXEC_PATH", () => {
    const opts = parseOptions(
      ["--dns-exec", "/bin/hook x", "--dns-exec-mode", "uacme"],
      allProviderOptions(),
    );
    assert.deepEqual(Object.fromEntries(dnsConfigsFromOptions(opts, ["exec", "exec"], {})), {
      exec: { provider: "exec", command: "/bin/hook x", mode: "uacme" },
    });
    const bare = parseOptions([], allProviderOptions());
    assert.deepEqual(
      Object.fromEntries(dnsConfigsFromOptions(bare, ["exec"], { EXEC_PATH: "/bin/lego-hook" })),
      {
        exec: { provider: "exec", command: "/bin/lego-hook" },
      },
    );
  });
});

describe("--dns acmesh:dns_x", () => {
  const acmesh = join(import.meta.dirname, "..", "..", "fixtures", "acmesh");

  test("the script is part of the name; --acmesh and $LE_WORKING_DIR locate acme.sh; two scripts, two entries", () => {
    const opts = parseOptions(["--acmesh", acmesh, "--acmesh-timeout", "30"], allProviderOptions());
    assert.deepEqual(
      Object.fromEntries(
        dnsConfigsFromOptions(opts, ["acmesh:dns_test", "exec", "acmesh:dns_test"], { EXEC_PATH: "/bin/h" }),
      ),
      {
        "acmesh:dns_test": { provider: "acmesh", script: "dns_test", acmesh, timeout: 30 },
        exec: { provider: "exec", command: "/bin/h" },
      },
    );
    const bare = parseOptions([], allProviderOptions());
    assert.deepEqual(
      Object.fromEntries(dnsConfigsFromOptions(bare, ["acmesh:dns_test"], { LE_WORKING_DIR: acmesh })),
      { "acmesh:dns_test": { provider: "acmesh", script: "dns_test", acmesh } },
    );
    assert.ok(!allProviderOptions().some((o) => o.name === "acmesh-script"), "no option for the script");
  });

  test("usage errors, exit 2 before anything is contacted", async () => {
    let r = await issue(["-d", "example.com", "--dns", "acmesh", "--acmesh", acmesh]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dns acmesh needs a script after a colon: --dns acmesh:dns_x/);
    r = await issue(["-d", "example.com", "--dns", "acmesh:dns_CF", "--acmesh", acmesh]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dns acmesh:dns_CF: must be a dnsapi script's name like dns_cf/);
    r = await issue(["-d", "example.com", "--dns", "exec:dns_cf"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown --dns provider "exec:dns_cf"/);
    assert.match(r.stderr, /Providers: exec, rfc2136, acmesh:dns_x/);
    r = await issue(["-d", "example.com", "--dns", "acmesh:dns_nosuch", "--acmesh", acmesh]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /--dns acmesh:dns_nosuch: is not one of acme\.sh's dnsapi scripts: there is no .*dnsapi\/dns_nosuch\.sh/,
    );
    r = await issue(["-d", "example.com", "--dns", "acmesh:dns_cf", "--acmesh", join(home, "nowhere")]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /--acmesh ".*nowhere": has no acme\.sh .*git clone --depth 1 https:\/\/github\.com\/acmesh-official\/acme\.sh/,
    );
    r = await issue(["-d", "example.com", "--dns", "acmesh:dns_cf"]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /--dns acmesh:dns_cf: acme\.sh is not at .*\/\.acme\.sh\/acme\.sh \(the default place\): install it \(curl https:\/\/get\.acme\.sh/,
    );
    r = await issue(["-d", "example.com", "-w", home, "--acmesh", acmesh]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /--acmesh belongs to the acmesh DNS provider, but no name uses --dns acmesh:dns_x/,
    );
  });
});
