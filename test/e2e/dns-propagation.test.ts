/**
 * End to end: wile's propagation check (src/dns/propagation.ts) with dist/wile.cjs, a real BIND9
 * primary (zones example.test, alias.test, lag.test), a lagging BIND9 secondary of lag.test, and
 * Pebble validating through a BIND9 resolver in front of the primary (it follows the CNAMEs). Records are written by `--dns exec` with a small hook
 * that runs nsupdate with the TSIG key file (the secret stays in the file: never in argv or env).
 * One BIND9 pair and one Pebble for the file; cases on different names run in parallel.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { queryTxt } from "../../src/dns/transport";
import { forgetAuthorizations } from "../helpers/authz";
import { type Bind9, bind9Unavailable, startBind9 } from "../helpers/bind9";
import { sanNames } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { certFiles, hasStackTrace } from "../helpers/e2e";
import { findBinary, startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

const nsupdateMissing = (() => {
  try {
    findBinary("nsupdate");
    return false;
  } catch (e) {
    return (e as Error).message;
  }
})();
const skip = skipUnlessAvailable(bind9Unavailable() || nsupdateMissing);

let primary: Bind9;
let secondary: Bind9;
/** Pebble's resolver: forwards to the primary and follows CNAMEs across its zones (as a CA's would). */
let resolver: Bind9;
let env: TestEnv;
let home: string;
let hook: string;
let hookLog: string;

/** lego's exec protocol (`present|cleanup FQDN. VALUE`) through nsupdate -k against the primary. */
function writeHook(dir: string): void {
  hook = join(dir, "dns-hook");
  hookLog = join(dir, "hook.log");
  const nsupdate = findBinary("nsupdate");
  writeFileSync(
    hook,
    [
      "#!/bin/sh",
      "set -eu",
      `echo "$1 $2 $3" >> '${hookLog}'`,
      'zone=$(echo "$2" | awk -F. \'{ print $(NF-2) "." $(NF-1) }\')',
      'case "$1" in present) op="add $2 60";; cleanup) op="delete $2";; *) exit 2;; esac',
      `'${nsupdate}' -k '${primary.keyFiles["wile-test"]}' <<EOF`,
      `server 127.0.0.1 ${primary.port}`,
      "zone $zone",
      'update $op IN TXT "$3"',
      "send",
      "EOF",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
}

const issue = (names: string[], extra: string[], timeoutMs = 60_000) =>
  runWile(
    [
      "issue",
      ...names.flatMap((n) => ["-d", n]),
      "--dns",
      "exec",
      "--dns-exec",
      hook,
      "--server",
      env.directoryUrl,
      "--ca-bundle",
      env.caBundle,
      ...extra,
    ],
    { home, timeoutMs },
  );

/** What the hook was asked for FQDNs containing `part`. */
const hookCalls = (part: string) =>
  existsSync(hookLog)
    ? readFileSync(hookLog, "utf8")
        .split("\n")
        .filter((l) => l.includes(part))
    : [];

describe("dns-01 propagation check against BIND9", { skip }, () => {
  before(async () => {
    primary = await startBind9({
      zones: [
        {
          name: "example.test",
          records: [
            "_acme-challenge.www IN CNAME _acme-challenge.www.alias.test.",
            "_acme-challenge.d IN CNAME _acme-challenge.alias.test.",
          ],
        },
        "alias.test",
        "lag.test",
      ],
    });
    [secondary, resolver] = await Promise.all([
      startBind9({ zones: ["lag.test"], secondaryOf: primary }),
      startBind9({ zones: ["example.test", "alias.test"], resolverFor: primary }),
    ]);
    // No authorization reuse: the renewal below must prove control again.
    env = await startTestEnv({ dnsServer: resolver.serverArg, env: { PEBBLE_AUTHZREUSE: "0" } });
    const dir = tempDir("wile-e2e-dns-check-");
    home = join(dir, "wile");
    writeHook(dir);
    // One account first: the cases below run at once and would otherwise each register one.
    const reg = await runWile(
      ["account", "register", "--server", env.directoryUrl, "--ca-bundle", env.caBundle],
      {
        home,
      },
    );
    assert.equal(reg.code, 0, dump(reg));
  });

  after(async () => {
    await Promise.all([env?.stop(), resolver?.stop(), secondary?.stop(), primary?.stop()]);
  });

  it("issues a wildcard + apex certificate: records checked at the given server, removed afterwards", async () => {
    const r = await issue(["example.test", "*.example.test"], ["--dns-resolvers", primary.serverArg]);
    assert.equal(r.code, 0, dump(r));
    assert.deepEqual(sanNames(certFiles(home, "example.test").cert), ["*.example.test", "example.test"]);
    assert.equal(
      hookCalls(" _acme-challenge.example.test. ").filter((l) => l.startsWith("present")).length,
      2,
    );
    assert.deepEqual(await queryTxt(primary.server, "_acme-challenge.example.test"), []);
    const renewal = JSON.parse(readFileSync(certFiles(home, "example.test").renewal, "utf8"));
    assert.deepEqual(renewal.challenge.dnsCheck, { timeout: 180, resolvers: [primary.serverArg] });
    assert.doesNotMatch(r.stderr, /Waiting until/, "the records were there at the first look");
    console.log(
      `dns: wildcard+apex issuance (dist/wile.cjs, exec hook + nsupdate, check at BIND9, Pebble), run alone: wall ${Math.round(r.ms)} ms`,
    );
    // A renewal replays the settings from renewal.json: the same server is asked (the test zones
    // are not in the public DNS, so the system's resolvers would not do).
    await resolver.flush();
    // A fresh challenge, certainly: PEBBLE_AUTHZREUSE=0 still reuses 1 in 100 (test/helpers/authz.ts).
    await forgetAuthorizations(env, home, ["example.test"]);
    const renewed = await runWile(["renew", "example.test", "--force"], { home, timeoutMs: 60_000 });
    assert.equal(renewed.code, 0, dump(renewed));
    assert.equal(
      hookCalls(" _acme-challenge.example.test. ").filter((l) => l.startsWith("present")).length,
      4,
    );
    assert.deepEqual(await queryTxt(primary.server, "_acme-challenge.example.test"), []);
  });

  // The other cases work on other names: at once, after the timed one above ran alone.
  describe("waiting, aliases, bad values", { concurrency: true }, () => {
    it("a lagging secondary: wile waits and names it when --dns-timeout runs out; a NOTIFY while it waits lets it through", async () => {
      const both = `${primary.serverArg},${secondary.serverArg}`;
      const failed = await issue(["a.lag.test"], ["--dns-resolvers", both, "--dns-timeout", "2"]);
      assert.equal(failed.code, 1, dump(failed));
      assert.match(
        failed.stderr,
        /Waiting until the TXT record _acme-challenge\.a\.lag\.test is visible at 1 of 2 DNS server/,
      );
      assert.match(failed.stderr, /is not visible at every DNS server after 2 s \(--dns-timeout\); lagging:/);
      assert.match(failed.stderr, new RegExp(`127\\.0\\.0\\.1:${secondary.port}: no TXT record`));
      assert.doesNotMatch(
        failed.stderr,
        new RegExp(`127\\.0\\.0\\.1:${primary.port}:`),
        "the primary is not lagging",
      );
      assert.match(failed.stderr, /--no-dns-check/);
      assert.ok(!hasStackTrace(failed.stderr));
      assert.deepEqual(await queryTxt(primary.server, "_acme-challenge.a.lag.test"), [], "no record left");
      assert.equal(hookCalls("a.lag.test").length, 2, "present, then cleanup");

      let finished: Awaited<ReturnType<typeof issue>> | undefined;
      const waiting = issue(["b.lag.test"], ["--dns-resolvers", both, "--dns-timeout", "30"]).then((r) => {
        finished = r;
        return r;
      });
      // Once the record is on the primary, the secondary is told to transfer the zone.
      while ((await queryTxt(primary.server, "_acme-challenge.b.lag.test")).length === 0) {
        if (finished) assert.fail(`wile ended before the record was written:\n${dump(finished)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300));
      await secondary.notify("lag.test");
      const ok = await waiting;
      assert.equal(ok.code, 0, dump(ok));
      assert.match(ok.stderr, /Waiting until the TXT record _acme-challenge\.b\.lag\.test is visible/);
      assert.match(ok.stderr, /is visible at every server after/);
      assert.deepEqual(await queryTxt(primary.server, "_acme-challenge.b.lag.test"), []);
    });

    it("CNAME alias mode: _acme-challenge.www.example.test is a CNAME into alias.test, so the record goes there", async () => {
      const r = await issue(
        ["www.example.test"],
        ["--dns-resolvers", primary.serverArg, "--dns-timeout", "10"],
      );
      assert.equal(r.code, 0, dump(r));
      assert.match(
        r.stderr,
        /_acme-challenge\.www\.example\.test is an alias \(CNAME\) of _acme-challenge\.www\.alias\.test/,
      );
      const calls = hookCalls("www.");
      assert.equal(calls.length, 2, calls.join("\n"));
      assert.ok(
        calls.every((l) => l.includes(" _acme-challenge.www.alias.test. ")),
        calls.join("\n"),
      );
      assert.deepEqual(await queryTxt(primary.server, "_acme-challenge.www.alias.test"), []);
    });

    it("--dns-alias alias.test: the record goes to _acme-challenge.alias.test (acme.sh's --challenge-alias)", async () => {
      const r = await issue(
        ["d.example.test"],
        ["--dns-resolvers", primary.serverArg, "--dns-alias", "alias.test", "--dns-timeout", "10"],
      );
      assert.equal(r.code, 0, dump(r));
      // Said so, not found by the CNAME lookup (which would lead to the same place here).
      assert.match(
        r.stderr,
        /_acme-challenge\.d\.example\.test goes to _acme-challenge\.alias\.test \(--dns-alias alias\.test\)/,
      );
      assert.doesNotMatch(r.stderr, /is an alias \(CNAME\)/);
      const calls = hookCalls("_acme-challenge.alias.test.");
      assert.equal(calls.length, 2, readFileSync(hookLog, "utf8"));
      assert.deepEqual(hookCalls("d.example.test"), [], "nothing written at the name itself");
      const renewal = JSON.parse(readFileSync(certFiles(home, "d.example.test").renewal, "utf8"));
      assert.deepEqual(renewal.challenge.dnsAlias, { "d.example.test": "alias.test" });
      // A renewal replays the alias from renewal.json. The resolver in front of Pebble may still
      // hold the first run's answer (see resolverFor in test/helpers/bind9.ts): flushed first.
      await resolver.flush();
      // A fresh challenge, certainly: PEBBLE_AUTHZREUSE=0 still reuses 1 in 100 (test/helpers/authz.ts).
      await forgetAuthorizations(env, home, ["d.example.test"]);
      const renewed = await runWile(["renew", "d.example.test", "--force"], { home, timeoutMs: 60_000 });
      assert.equal(renewed.code, 0, dump(renewed));
      assert.match(renewed.stderr, /goes to _acme-challenge\.alias\.test \(--dns-alias alias\.test\)/);
      assert.equal(hookCalls("_acme-challenge.alias.test.").length, 4);
    });

    it("--no-dns-check: one line says so, nothing is waited for (the CNAME lookup still asks --dns-resolvers)", async () => {
      const r = await issue(["skip.example.test"], ["--dns-resolvers", primary.serverArg, "--no-dns-check"]);
      assert.equal(r.code, 0, dump(r));
      const said = r.stderr.split("\n").filter((l) => /--no-dns-check\)|Waiting until/.test(l));
      assert.deepEqual(said, [
        "Not checking that _acme-challenge.skip.example.test can be seen in DNS (--no-dns-check); asking the CA now",
      ]);
      const renewal = JSON.parse(readFileSync(certFiles(home, "skip.example.test").renewal, "utf8"));
      assert.deepEqual(renewal.challenge.dnsCheck, {
        timeout: 180,
        resolvers: [primary.serverArg],
        skip: true,
      });
    });

    it("bad --dns-resolvers / --dns-timeout values: exit 2, nothing contacted, the hook never runs", async () => {
      for (const extra of [
        ["--dns-resolvers", "127.0.0.1:0"],
        ["--dns-resolvers", `${primary.serverArg},`],
        ["--dns-timeout", "soon"],
        ["--dns-timeout", "0"],
      ]) {
        const r = await issue(["bad.example.test"], extra);
        assert.equal(r.code, 2, dump(r));
        assert.ok(!hasStackTrace(r.stderr));
      }
      assert.deepEqual(hookCalls("bad.example.test"), []);
    });
  });
});
