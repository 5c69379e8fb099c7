import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EAB_OPTIONS } from "../../../src/cli/ca-options";
import { parseIdentifier, parseIdentifiers } from "../../../src/cli/names";
import {
  type OptionSpec,
  pairNamesWithWebroots,
  parseOptions,
  withValuesAttached,
} from "../../../src/cli/options";
import { resolveServer } from "../../../src/cli/servers";
import { UsageError } from "../../../src/util/errors";

describe("names given with -d", () => {
  test("lower-cased, trailing dot dropped, Unicode to punycode", () => {
    assert.deepEqual(parseIdentifier("WWW.Example.COM."), { type: "dns", value: "www.example.com" });
    assert.deepEqual(parseIdentifier("bücher.example"), { type: "dns", value: "xn--bcher-kva.example" });
    assert.deepEqual(parseIdentifier("*.example.com"), { type: "dns", value: "*.example.com" });
  });
  test("IP addresses become ip identifiers (RFC 8738), IPv6 in canonical form", () => {
    assert.deepEqual(parseIdentifier("192.0.2.10"), { type: "ip", value: "192.0.2.10" });
    assert.deepEqual(parseIdentifier("2001:DB8:0:0:0:0:0:1"), { type: "ip", value: "2001:db8::1" });
    assert.deepEqual(parseIdentifier("[::1]"), { type: "ip", value: "::1" });
  });
  for (const [bad, why] of [
    ["https://example.com/", /not a domain name/],
    ["example.com:443", /not a domain name/],
    ["localhost", /single-label/],
    ["a..example", /empty label/],
    ["-a.example", /hyphen/],
    ["under_score.example", /characters not allowed/],
    ["a.*.example", /whole first label/],
    [`${"a".repeat(64)}.example`, /63/],
    ["192.0.2.300", /mistyped IP/],
    ["", /empty name/],
  ] as const) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseIdentifier(bad),
        (e: unknown) => e instanceof UsageError && why.test(e.message),
      );
    });
  }
  // Issue 10 finding 4: `-d ex%41mple.org` issued example.org. Every rewrite URL or IDNA
  // processing does (node:url's domainToASCII does them all) is refused, naming the character.
  for (const [bad, char, becomes] of [
    ["ex%41mple.org", "U+0025", "example.org"],
    ["host%2eexample.org", "U+0025", "host.example.org"],
    ["%65xample.org", "U+0025", "example.org"],
    ["host\uFF0Eexample.org", "U+FF0E", "full-width full stop"],
    ["host\u3002example.org", "U+3002", "ideographic full stop"],
    ["host\uFF61example.org", "U+FF61", "half-width ideographic full stop"],
    ["ex\u00ADample.org", "U+00AD", "soft hyphen: dropped"],
    ["ex\u200Bample.org", "U+200B", "zero-width space: dropped"],
    ["\uFF45xample.org", "U+FF45", "full-width e"],
    ["\uFB01le.example", "U+FB01", "ligature fi"],
    ["\u24D0b.example", "U+24D0", "circled a"],
    ["x\u00B2y.example", "U+00B2", "superscript two"],
  ] as const) {
    test(`refuses ${JSON.stringify(bad)} (${becomes}), naming ${char}`, () => {
      assert.throws(
        () => parseIdentifier(bad),
        (e: unknown) =>
          e instanceof UsageError &&
          e.exitCode === 2 &&
          e.message.includes(char) &&
          /taken literally/.test(e.message) &&
          e.message.includes(JSON.stringify(bad)),
      );
    });
  }
  test("a backslash is not a domain name (URL parsing reads it as a path: a.example\\b was a.example)", () => {
    assert.throws(() => parseIdentifier("a.example\\b"), /not a domain name/);
    assert.throws(() => parseIdentifier("ex\\ample.org"), /not a domain name/);
  });
  test("what is not a rewrite: case, NFC composition, one trailing dot, punycode typed as such", () => {
    assert.equal(parseIdentifier("CAF\u00C9.Example.").value, "xn--caf-dma.example");
    // e + combining acute (NFD, as macOS pastes it) is the same name as the composed \u00e9.
    assert.equal(parseIdentifier("cafe\u0301.example").value, "xn--caf-dma.example");
    assert.equal(parseIdentifier("xn--caf-dma.example").value, "xn--caf-dma.example");
    assert.equal(parseIdentifier("stra\u00DFe.example").value, "xn--strae-oqa.example");
    assert.throws(() => parseIdentifier("xn--zz.example"), /punycode/);
  });
  test("duplicates removed, order kept, commas split", () => {
    assert.deepEqual(
      parseIdentifiers(["b.example,a.example", "B.example"]).map((i) => i.value),
      ["b.example", "a.example"],
    );
  });
  test("more than 100 names refused", () => {
    const many = Array.from({ length: 101 }, (_, i) => `n${i}.example`);
    assert.throws(() => parseIdentifiers(many), /at most 100/);
  });
});

describe("which -w serves which -d", () => {
  test("another option's value that starts with -d or -w is that option's, not a name or a webroot", () => {
    // An EAB HMAC key is base64url: 1 in 64 starts with "-" (a CI run met "-dhlP9...").
    const argv = [
      "-d",
      "a.example",
      "-w",
      "/srv/a",
      "--eab-kid",
      "k",
      "--eab-hmac-key",
      "-dhlP9TI4",
      "--x",
      "-w/tmp",
    ];
    const specs: OptionSpec[] = [
      ...EAB_OPTIONS,
      { name: "domain", alias: "d", type: "string", repeat: true, help: "" },
      { name: "webroot", alias: "w", type: "string", repeat: true, help: "" },
      { name: "x", type: "string", help: "" },
    ];
    assert.deepEqual(pairNamesWithWebroots(withValuesAttached(argv, specs)), [
      { name: "a.example", webroot: "/srv/a" },
    ]);
    assert.equal(parseOptions(argv, specs)["eab-hmac-key"], "-dhlP9TI4");
  });

  test("a line starting with -d: each -w serves the names before it (acme.sh style)", () => {
    assert.deepEqual(
      pairNamesWithWebroots(["-d", "a.example", "-w", "/srv/a", "-d", "b.example", "-w", "/srv/b"]),
      [
        { name: "a.example", webroot: "/srv/a" },
        { name: "b.example", webroot: "/srv/b" },
      ],
    );
    assert.deepEqual(pairNamesWithWebroots(["-d", "a.example", "-w", "/srv/a", "-d", "b.example"]), [
      { name: "a.example", webroot: "/srv/a" },
      { name: "b.example", webroot: "/srv/a" },
    ]);
  });
  test("--standalone is a method like -w, in either order, and takes no value", () => {
    assert.deepEqual(
      pairNamesWithWebroots(["-d", "a.example", "--standalone", "-d", "b.example", "-w", "/srv/b"]),
      [
        { name: "a.example", webroot: undefined, standalone: true },
        { name: "b.example", webroot: "/srv/b" },
      ],
    );
    assert.deepEqual(
      pairNamesWithWebroots("-w /srv/a -d a.example --standalone -d b.example -d 192.0.2.1".split(" ")),
      [
        { name: "a.example", webroot: "/srv/a" },
        { name: "b.example", webroot: undefined, standalone: true },
        { name: "192.0.2.1", webroot: undefined, standalone: true },
      ],
    );
  });
  test("a line starting with -w: each -w serves the names after it (certbot style)", () => {
    assert.deepEqual(
      pairNamesWithWebroots(["-w", "/srv/a", "-d", "a.example", "-w", "/srv/b", "-d", "b.example"]),
      [
        { name: "a.example", webroot: "/srv/a" },
        { name: "b.example", webroot: "/srv/b" },
      ],
    );
    assert.deepEqual(
      pairNamesWithWebroots([
        "-w",
        "/srv/a",
        "-d",
        "a.example",
        "--webroot=/srv/b",
        "--domain=b.example",
        "-dc.example",
      ]),
      [
        { name: "a.example", webroot: "/srv/a" },
        { name: "b.example", webroot: "/srv/b" },
        { name: "c.example", webroot: "/srv/b" },
      ],
    );
  });
  test("one -w after all the names serves them all", () => {
    assert.deepEqual(pairNamesWithWebroots(["-d", "a.example", "-d", "b.example", "-w", "/srv"]), [
      { name: "a.example", webroot: "/srv" },
      { name: "b.example", webroot: "/srv" },
    ]);
  });
  test("--dns PROVIDER is read like -w: per name, in either style", () => {
    assert.deepEqual(
      pairNamesWithWebroots([
        "-d",
        "a.example",
        "--dns",
        "exec",
        "-d",
        "*.a.example",
        "-d",
        "b.example",
        "-w",
        "/srv/b",
      ]),
      [
        { name: "a.example", webroot: undefined, dns: "exec" },
        { name: "*.a.example", webroot: "/srv/b" },
        { name: "b.example", webroot: "/srv/b" },
      ],
    );
    assert.deepEqual(
      pairNamesWithWebroots([
        "--dns=exec",
        "-d",
        "a.example",
        "--dns-exec",
        "/bin/hook",
        "-d",
        "*.a.example",
        "-w",
        "/srv",
        "-d",
        "b.example",
      ]),
      [
        { name: "a.example", webroot: undefined, dns: "exec" },
        { name: "*.a.example", webroot: undefined, dns: "exec" },
        { name: "b.example", webroot: "/srv" },
      ],
    );
  });
  test("--alpn is a method without a value, read in both orders", () => {
    assert.deepEqual(
      pairNamesWithWebroots([
        "-d",
        "a.example",
        "--alpn",
        "--tls-port",
        "8443",
        "-d",
        "b.example",
        "-w",
        "/srv",
      ]),
      [
        { name: "a.example", webroot: undefined, alpn: true },
        { name: "b.example", webroot: "/srv" },
      ],
    );
    assert.deepEqual(
      pairNamesWithWebroots([
        "--alpn",
        "-d",
        "a.example",
        "-d",
        "192.0.2.1",
        "-w",
        "/srv",
        "-d",
        "b.example",
      ]),
      [
        { name: "a.example", webroot: undefined, alpn: true },
        { name: "192.0.2.1", webroot: undefined, alpn: true },
        { name: "b.example", webroot: "/srv" },
      ],
    );
  });
  test("no webroot at all leaves it undefined", () => {
    assert.deepEqual(pairNamesWithWebroots(["-d", "a.example"]), [{ name: "a.example", webroot: undefined }]);
  });
});

describe("option table", () => {
  const specs = [
    { name: "domain", alias: "d", type: "string" as const, repeat: true, help: "" },
    { name: "server", type: "string" as const, help: "" },
    { name: "preflight", type: "boolean" as const, defaultTrue: true, help: "" },
  ];
  test("repeatable, defaults, --no-", () => {
    const o = parseOptions(["-d", "a", "-d", "b", "--no-preflight", "--json"], specs);
    assert.deepEqual(o.domain, ["a", "b"]);
    assert.equal(o.preflight, false);
    assert.equal(o.json, true);
    assert.equal(parseOptions([], specs).preflight, true);
  });
  test("unknown option, twice-given single option, missing value", () => {
    assert.throws(() => parseOptions(["--sever", "x"], specs), /unknown option --sever/);
    assert.throws(() => parseOptions(["--server", "a", "--server", "b"], specs), /more than once/);
    assert.throws(() => parseOptions(["--server"], specs), /needs a value/);
  });
});

describe("--server", () => {
  test("shortcuts, --staging, HTTPS only", () => {
    assert.equal(resolveServer(undefined, false), "https://acme-v02.api.letsencrypt.org/directory");
    assert.equal(resolveServer(undefined, true), "https://acme-staging-v02.api.letsencrypt.org/directory");
    assert.equal(resolveServer("zerossl", false), "https://acme.zerossl.com/v2/DV90");
    assert.equal(resolveServer("https://127.0.0.1:14000/dir", false), "https://127.0.0.1:14000/dir");
    assert.throws(() => resolveServer("http://ca.example/dir", false), /not HTTPS/);
    assert.throws(() => resolveServer("letsencrpyt", false), /unknown --server/);
    assert.throws(() => resolveServer("zerossl", true), /different CAs/);
    assert.doesNotThrow(() => resolveServer("letsencrypt-staging", true));
  });
});
