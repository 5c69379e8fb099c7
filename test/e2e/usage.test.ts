/**
 * Bad input exits 2 before anything is contacted (design.md, issue 2 part 8). --server points at a
 * listener that counts connections: wile contacting it would show as a connection there and as a
 * different exit code (1), so every case can fail for the right reason.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { filesUnder } from "../helpers/certs";
import { connectionCounter, hasStackTrace } from "../helpers/e2e";
import { dump, runWile, tempDir } from "../helpers/wile";

let counter: Awaited<ReturnType<typeof connectionCounter>>;
let webroot: string;

before(async () => {
  counter = await connectionCounter();
  webroot = tempDir("wile-e2e-usage-webroot-");
});

after(async () => {
  await counter?.close();
});

interface Case {
  what: string;
  args: (server: string) => string[];
  /** The message must match these. */
  says: RegExp[];
}

const base = (server: string, ...extra: string[]) => ["issue", "--server", server, ...extra];

const cases: Case[] = [
  {
    what: "a malformed name",
    args: (s) => base(s, "-d", "bad..example", "-w", webroot),
    says: [/bad\.\.example/],
  },
  {
    what: "a name with invalid characters",
    args: (s) => base(s, "-d", "under_score!.example", "-w", webroot),
    says: [/under_score!\.example/],
  },
  {
    what: "a percent-escape in a name (issue 10 finding 4: ex%41mple.org issued example.org)",
    args: (s) => base(s, "-d", "ex%41mple.org", "-w", webroot),
    says: [/ex%41mple\.org/, /"%"/, /literally/],
  },
  {
    what: "a full-width dot in a name (IDNA would make it host.example.org)",
    args: (s) => base(s, "-d", "host\uFF0Eexample.org", "-w", webroot),
    says: [/U\+FF0E/, /literally/],
  },
  {
    what: "a wildcard with http-01 (explains DNS-01)",
    args: (s) => base(s, "-d", "*.wild.example", "-w", webroot),
    says: [/\*\.wild\.example/, /DNS-01/i],
  },
  {
    what: "no webroot at all",
    args: (s) => base(s, "-d", "nowebroot.example"),
    says: [/webroot|-w\b/i, /nowebroot\.example/],
  },
  {
    what: "a webroot that does not exist",
    args: (s) => base(s, "-d", "missing.example", "-w", join(webroot, "does-not-exist")),
    says: [/does-not-exist/],
  },
  {
    what: "no -d name",
    args: (s) => base(s, "-w", webroot),
    says: [/-d|domain|name/i],
  },
  {
    what: "an unknown key type",
    args: (s) => base(s, "-d", "key.example", "-w", webroot, "--key-type", "ec-521"),
    says: [/ec-521/, /ec-256/],
  },
  {
    what: "an unknown --server shortcut",
    args: () => ["issue", "--server", "no-such-ca", "-d", "srv.example", "-w", webroot],
    says: [/no-such-ca/],
  },
  {
    what: "an unreadable --ca-bundle",
    args: (s) => base(s, "-d", "ca.example", "-w", webroot, "--ca-bundle", join(webroot, "nope", "ca.pem")),
    says: [/nope\/ca\.pem/],
  },
  {
    what: "--eab-kid without --eab-hmac-key",
    args: (s) => base(s, "-d", "eab.example", "-w", webroot, "--eab-kid", "kid-1"),
    says: [/--eab-hmac-key/],
  },
  {
    what: "--eab-hmac-key without --eab-kid",
    args: (s) => base(s, "-d", "eab.example", "-w", webroot, "--eab-hmac-key", "c2VjcmV0c2VjcmV0c2VjcmV0"),
    says: [/--eab-kid/],
  },
  {
    what: "an unknown option",
    args: (s) => base(s, "-d", "opt.example", "-w", webroot, "--no-such-option"),
    says: [/no-such-option/],
  },
];

describe("bad input exits 2 before anything is contacted", () => {
  for (const c of cases) {
    it(`rejects ${c.what}`, async () => {
      const home = join(tempDir("wile-e2e-usage-home-"), "wile");
      const before = counter.count();
      const args = c.args(counter.url);
      const r = await runWile(args, { home, timeoutMs: 30_000 });
      assert.equal(counter.count(), before, `wile contacted the CA for ${c.what}:\n${dump(r)}`);
      assert.equal(r.code, 2, `${args.join(" ")}\n${dump(r)}`);
      for (const re of c.says) assert.match(r.stderr, re, `the message should match ${re}`);
      assert.ok(!hasStackTrace(r.stderr), `stack trace without -v:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /c2VjcmV0c2VjcmV0c2VjcmV0/, "the EAB key leaked into the message");
      assert.deepEqual(filesUnder(join(home, "certs")), [], "nothing may be created for bad input");
      assert.deepEqual(filesUnder(join(home, "accounts")), [], "nothing may be created for bad input");
    });
  }

  it("an EAB key that starts with -d is the key, not a name: the input is good, so the CA is contacted", async () => {
    // base64url keys start with "-" one time in 64; such a key once became a -d name (exit 2).
    const key = "-dhlP9TI4FqNPl6AHYpm5gZeU1kELQcIoijuuHbhwkQ";
    const before = counter.count();
    const r = await runWile(
      base(counter.url, "-d", "eab.example", "-w", webroot, "--eab-kid", "kid-1", "--eab-hmac-key", key),
      { home: join(tempDir("wile-e2e-usage-home-"), "wile"), timeoutMs: 30_000 },
    );
    assert.equal(r.code, 1, dump(r));
    assert.ok(counter.count() > before, `the CA was not contacted:\n${dump(r)}`);
    assert.doesNotMatch(r.stderr, /single-label|hlP9TI4/, dump(r));
  });

  it("does not write through to a webroot for bad input", async () => {
    const wr = tempDir("wile-e2e-usage-clean-");
    mkdirSync(join(wr, "sub"));
    const r = await runWile(base(counter.url, "-d", "*.x.example", "-w", wr), {
      home: join(tempDir("wile-e2e-usage-home-"), "wile"),
    });
    assert.equal(r.code, 2, dump(r));
    assert.equal(existsSync(join(wr, ".well-known")), false);
  });

  it("prints `wile <version>` for --version and version", async () => {
    const home = join(tempDir("wile-e2e-usage-home-"), "wile");
    for (const args of [["--version"], ["version"]]) {
      const r = await runWile(args, { home });
      assert.equal(r.code, 0, dump(r));
      assert.match(r.stdout.trim(), /^wile \d+\.\d+\.\d+\S*$/);
    }
  });
});
