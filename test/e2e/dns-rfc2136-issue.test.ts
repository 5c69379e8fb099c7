/**
 * End to end: `wile issue --dns rfc2136` against a real BIND9 (test/helpers/bind9.ts) and Pebble
 * validating the TXT records BIND9 serves. A wildcard plus apex certificate, renewed from
 * renewal.json; an hmac-sha512 key given through lego's environment variables, then from the
 * home's config; a wrong secret (BADSIG), an unknown key (BADKEY), a key file every user may read;
 * the CA refusing, a hook failing on the second record, the server refusing it; SIGTERM while the
 * server is slow to add the second record, and SIGKILL, after which the next run (wile issue, or
 * wile renew --all's sweep) removes the record and says so. After every case BIND9 is
 * asked for the case's `_acme-challenge` names: no TXT record may remain. One BIND9 and one Pebble
 * for the file; the cases that do not share a home run in parallel.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { queryTxt } from "../../src/dns/transport";
import { CLASS, decodeMessage, OPCODE } from "../../src/dns/wire";
import { forgetAuthorizations } from "../helpers/authz";
import { type Bind9, bind9Unavailable, bindKeyFile, startBind9, wileDnsArgs } from "../helpers/bind9";
import { sanNames } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { auditSecret } from "../helpers/secrets-audit";
import { freePort, startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

const skip = skipUnlessAvailable(bind9Unavailable());

let env: TestEnv;
let bind: Bind9;
/** Serves example.test too, but the CA does not look there: records put there cannot validate. */
let unseen: Bind9;

before(async () => {
  [bind, unseen] = await Promise.all([
    startBind9({ zones: ["example.test"] }),
    startBind9({ zones: ["example.test"] }),
  ]);
  // Fresh authorizations for every order: a renewal must add its records again.
  env = await startTestEnv({ dnsServer: bind.serverArg, env: { PEBBLE_AUTHZREUSE: "0" } });
});

after(async () => {
  await Promise.all([env?.stop(), bind?.stop(), unseen?.stop()]);
});

const home = () => join(tempDir("wile-e2e-rfc2136-"), "wile");

function issue(names: string[], dns: string[]): string[] {
  const args = ["issue"];
  for (const n of names) args.push("-d", n);
  return [...args, ...dns, "--server", env.directoryUrl, "--ca-bundle", env.caBundle, ...wileDnsArgs(bind)];
}

/** --dns rfc2136 with the hmac-sha256 key file. */
const rfc2136 = (key = bind.keyFiles["wile-test"] as string, server = bind.serverArg) => [
  "--dns",
  "rfc2136",
  "--rfc2136-server",
  server,
  "--rfc2136-tsig-key",
  key,
];

/** The TXT values still at `_acme-challenge.NAME` for each name (a wildcard shares its base's record). */
async function leftTxt(names: string[], server = bind): Promise<string[]> {
  const out: string[] = [];
  for (const n of new Set(names.map((n) => n.replace(/^\*\./, "")))) {
    for (const v of await queryTxt(server.server, `_acme-challenge.${n}`, { timeoutMs: 2000 })) {
      out.push(`_acme-challenge.${n} ${v}`);
    }
  }
  return out;
}

/** A key file (0600) with `name` and a random secret of the right size. */
function keyFile(name: string, algorithm = "hmac-sha256", mode = 0o600): string {
  const file = join(tempDir("wile-e2e-tsig-"), `${name}.key`);
  const secret = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)).toString("base64");
  writeFileSync(file, bindKeyFile(name, algorithm, secret), { mode });
  chmodSync(file, mode);
  return file;
}

/**
 * A UDP relay in front of BIND9 (what `--rfc2136-server` points at) that lets the first update
 * adding a record through and then, for the next ones, either never answers (`hold`: a server that
 * is slow, so wile waits while the first record is in the zone) or answers REFUSED (`refuse`).
 * Everything else (SOA queries, deletions) is relayed. Pebble's authorizations come in no fixed
 * order; this makes "the second record" the second one whichever name it is for.
 */
async function updateRelay(
  mode: "hold" | "refuse",
): Promise<{ serverArg: string; release(): void; stop(): void }> {
  const port = await freePort(true);
  const sock = createSocket("udp4");
  let adds = 0;
  let released = false;
  sock.on("message", (msg, from) => {
    let m: ReturnType<typeof decodeMessage>;
    try {
      m = decodeMessage(msg);
    } catch {
      return;
    }
    const adding = m.opcode === OPCODE.UPDATE && m.authorities.some((rr) => rr.class === CLASS.IN);
    if (adding && !released && adds++ >= 1) {
      if (mode === "hold") return;
      const refused = Buffer.alloc(12);
      msg.copy(refused, 0, 0, 2);
      refused.writeUInt16BE(0x8000 | (OPCODE.UPDATE << 11) | 5, 2);
      sock.send(refused, from.port, from.address);
      return;
    }
    const upstream = createSocket("udp4");
    upstream.on("message", (answer) => {
      sock.send(answer, from.port, from.address);
      upstream.close();
    });
    upstream.send(msg, bind.port, "127.0.0.1");
  });
  await new Promise<void>((resolve) => sock.bind(port, "127.0.0.1", resolve));
  return {
    serverArg: `127.0.0.1:${port}`,
    release: () => {
      released = true;
    },
    stop: () => sock.close(),
  };
}

/**
 * An exec hook that adds its first record with nsupdate (into the same BIND9) and fails on the
 * second; its cleanup deletes with nsupdate. Every call is logged.
 */
function failingSecondHook(): { cmd: string; log: string } {
  const dir = tempDir("wile-e2e-hook-");
  const log = join(dir, "log");
  const count = join(dir, "count");
  const cmd = join(dir, "hook.sh");
  const nsupdate = (op: string) =>
    `printf 'server 127.0.0.1 ${bind.port}\\nupdate ${op} %s 60 TXT "%s"\\nsend\\n' "$2" "$3" | nsupdate -k "${bind.keyFiles["wile-test"]}"`;
  writeFileSync(
    cmd,
    [
      "#!/bin/sh",
      `echo "$1 $2 $3" >> "${log}"`,
      'case "$1" in',
      "  present)",
      `    n=$(cat "${count}" 2>/dev/null || echo 0); echo $((n + 1)) > "${count}"`,
      '    if [ "$n" -ge 1 ]; then echo "hook: no second record today" >&2; exit 1; fi',
      `    ${nsupdate("add")} ;;`,
      `  cleanup) ${nsupdate("delete")} ;;`,
      "esac",
      "",
    ].join("\n"),
    { mode: 0o700 },
  );
  return { cmd, log };
}

describe("wile issue --dns rfc2136: wildcard + apex", { skip }, () => {
  // Alone, so that its time is not that of a loaded machine.
  it("issues a wildcard + apex certificate, stored under the first name; renew --force replays it", async () => {
    const h = home();
    const names = ["example.test", "*.example.test"];
    const r = await runWile(issue(names, rfc2136()), { home: h });
    assert.equal(r.code, 0, dump(r));
    console.log(`dns: rfc2136 wildcard+apex issue ms=${r.ms}`);
    const dir = join(h, "certs", "example.test");
    assert.deepEqual(sanNames(join(dir, "cert.pem")), ["*.example.test", "example.test"]);
    assert.deepEqual(await leftTxt(names), []);
    assert.equal(existsSync(join(dir, "dns-records.json")), false, "the journal is gone");
    const renewal = JSON.parse(readFileSync(join(dir, "renewal.json"), "utf8"));
    const entry = { provider: "rfc2136", server: bind.serverArg, tsigKey: bind.keyFiles["wile-test"] };
    assert.deepEqual(renewal.challenge.dns, { "example.test": entry, "*.example.test": entry });

    // A fresh challenge, certainly: PEBBLE_AUTHZREUSE=0 still reuses 1 in 100 (test/helpers/authz.ts).
    await forgetAuthorizations(env, h, ["example.test"]);
    const again = await runWile(["renew", "example.test", "--force"], { home: h });
    assert.equal(again.code, 0, dump(again));
    assert.match(
      again.stderr,
      /Adding TXT _acme-challenge\.example\.test \(rfc2136 \(127\.0\.0\.1:\d+, key wile-test\)\)/,
    );
    assert.deepEqual(await leftTxt(names), []);
  });
});

describe("wile issue --dns rfc2136: keys, failures, interruptions", { skip, concurrency: true }, () => {
  it("takes an hmac-sha512 key from lego's variables, then its secret from the home's config", async () => {
    const h = home();
    const name = "sha512.example.test";
    const secret = bind.secrets["wile-test-512"] as string;
    auditSecret(secret);
    const legoEnv = {
      RFC2136_NAMESERVER: bind.serverArg,
      RFC2136_TSIG_KEY: "wile-test-512",
      RFC2136_TSIG_ALGORITHM: "hmac-sha512.",
      RFC2136_TSIG_SECRET: secret,
    };
    const r = await runWile(issue([name], ["--dns", "rfc2136"]), { home: h, env: legoEnv });
    assert.equal(r.code, 0, dump(r));
    assert.deepEqual(await leftTxt([name]), []);
    const renewalText = readFileSync(join(h, "certs", name, "renewal.json"), "utf8");
    assert.ok(!renewalText.includes(secret), "the secret is not in renewal.json");
    assert.deepEqual(JSON.parse(renewalText).challenge.dns[name], {
      provider: "rfc2136",
      server: bind.serverArg,
      tsigName: "wile-test-512",
      tsigAlgorithm: "hmac-sha512",
    });

    // Without the variable the renewal has no secret: it says where to put it.
    const missing = await runWile(["renew", name, "--force"], { home: h });
    assert.equal(missing.code, 1, dump(missing));
    assert.match(
      missing.stderr,
      /RFC2136_TSIG_SECRET, or the home's config: wile config --dns-credential rfc2136\.tsigSecret/,
    );
    assert.match(
      missing.stderr,
      /hint: Secrets are not stored in \S+renewal\.json: set RFC2136_TSIG_SECRET in the environment of every renewal \(the cron job too\), or wile config --dns-credential rfc2136\.tsigSecret/,
    );

    const set = await runWile(["config", "--dns-credential", "rfc2136.tsigSecret"], {
      home: h,
      input: `${secret}\n`,
    });
    assert.equal(set.code, 0, dump(set));
    const shown = await runWile(["config"], { home: h });
    assert.match(shown.stdout, /dns\.rfc2136\.tsigSecret\s+\(set, not shown\)/);
    const renewed = await runWile(["renew", name, "--force"], { home: h });
    assert.equal(renewed.code, 0, dump(renewed));
    assert.deepEqual(await leftTxt([name]), []);
    for (const run of [r, missing, set, shown, renewed]) {
      assert.ok(!`${run.stdout}${run.stderr}`.includes(secret), "the secret is never shown");
    }
    assert.ok(!readFileSync(join(h, "logs", "wile.log"), "utf8").includes(secret), "nor logged");
  });

  for (const [what, key, rcode] of [
    ["a wrong secret", () => keyFile("wile-test"), /NOTAUTH\/BADSIG/],
    ["an unknown key", () => keyFile("nobody-knows-me"), /NOTAUTH\/BADKEY/],
  ] as const) {
    it(`${what} fails with exit 1 and the server's answer explained; nothing left`, async () => {
      const name = `${what.split(" ").pop()}.example.test`;
      const r = await runWile(issue([name], rfc2136(key())), { home: home() });
      assert.equal(r.code, 1, dump(r));
      assert.match(r.stderr, rcode);
      assert.match(r.stderr, /hint: check that the key name, algorithm and secret match/);
      assert.deepEqual(await leftTxt([name]), []);
    });
  }

  it("without a key the update goes unsigned: this BIND9 allows keys only, so REFUSED, explained", async () => {
    const name = "unsigned.example.test";
    const r = await runWile(issue([name], ["--dns", "rfc2136", "--rfc2136-server", bind.serverArg]), {
      home: home(),
    });
    assert.equal(r.code, 1, dump(r));
    assert.match(
      r.stderr,
      /Adding TXT _acme-challenge\.unsigned\.example\.test \(rfc2136 \(127\.0\.0\.1:\d+, unsigned\)\)/,
    );
    assert.match(r.stderr, /refused to add TXT .*: REFUSED/);
    assert.match(r.stderr, /hint: .*\(or, unsigned, this address\)/);
    assert.deepEqual(await leftTxt([name]), []);
  });

  it("a key file every user may read is a usage error before anything is contacted", async () => {
    const h = home();
    const name = "readable.example.test";
    const file = keyFile("wile-test", "hmac-sha256", 0o644);
    const r = await runWile(issue([name], rfc2136(file)), { home: h });
    assert.equal(r.code, 2, dump(r));
    assert.match(r.stderr, /readable by every user of this host \(mode 0644\)/);
    assert.match(r.stderr, /chmod 600/);
    assert.ok(!existsSync(join(h, "accounts")), "no account was registered");
  });

  it("the CA refusing (records on a server it does not see) leaves no record", async () => {
    const h = home();
    const name = "refused.example.test";
    // --no-dns-check: the propagation check would miss the record and stop before asking the CA.
    const args = [
      ...issue([name], rfc2136(unseen.keyFiles["wile-test"], unseen.serverArg)),
      "--no-dns-check",
    ];
    const r = await runWile(args, { home: h });
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /Adding TXT _acme-challenge\.refused\.example\.test/);
    assert.deepEqual(await leftTxt([name], unseen), []);
    assert.deepEqual(await leftTxt([name]), []);
    const journal = join(h, "certs", name, "dns-records.json");
    assert.equal(existsSync(journal), false, existsSync(journal) ? readFileSync(journal, "utf8") : "");
  });

  it("a hook failing after the first of two records leaves no record", async () => {
    const names = ["hookfail.example.test", "*.hookfail.example.test"];
    const hook = failingSecondHook();
    const r = await runWile(issue(names, ["--dns", "exec", "--dns-exec", hook.cmd]), { home: home() });
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /hook: no second record today/);
    const calls = readFileSync(hook.log, "utf8").trim().split("\n");
    // present (added), present (failed), then cleanup of both: of the failed one at once (a hook
    // may fail half way), of the first by the flow.
    const [first, second] = calls;
    assert.deepEqual(calls, [
      first,
      second,
      second?.replace(/^present/, "cleanup"),
      first?.replace(/^present/, "cleanup"),
    ]);
    assert.deepEqual(await leftTxt(names), []);
  });

  it("the server refusing the second record: the first is removed", async () => {
    const names = ["refuse2.example.test", "*.refuse2.example.test"];
    const relay = await updateRelay("refuse");
    try {
      const r = await runWile(issue(names, rfc2136(undefined, relay.serverArg)), { home: home() });
      assert.equal(r.code, 1, dump(r));
      assert.match(r.stderr, /refused to add TXT _acme-challenge\.refuse2\.example\.test .*: REFUSED/);
      assert.match(r.stderr, /hint: the server's allow-update/);
      assert.deepEqual(await leftTxt(names), []);
    } finally {
      relay.stop();
    }
  });

  for (const [signal, next] of [
    ["SIGTERM", ""],
    ["SIGKILL", "issue"],
    ["SIGKILL", "renew"],
  ] as const) {
    it(`${signal} while the server is slow to add the second record${next ? `, then wile ${next}` : ""}: no record stays`, async () => {
      const h = home();
      const label = `${signal.toLowerCase()}${next}`;
      const names = [`${label}.example.test`, `*.${label}.example.test`];
      const relay = await updateRelay("hold");
      try {
        const args = issue(names, rfc2136(undefined, relay.serverArg));
        let sent = 0;
        const r = await runWile(args, {
          home: h,
          interrupt: {
            when: /Adding TXT[\s\S]*Adding TXT/,
            signal,
            afterMs: 300,
            before: () => {
              sent = Date.now();
            },
          },
        });
        assert.ok(r.interrupted, dump(r));
        const inZone = await leftTxt(names);
        if (signal === "SIGTERM") {
          assert.equal(r.code, 143, dump(r));
          assert.match(r.stderr, /interrupted \(SIGTERM\): cleaning up/);
          const late = Date.now() - sent;
          console.log(`dns: rfc2136 SIGTERM to exit ms=${late}`);
          assert.ok(late < 3000, `exited ${late} ms after the signal`);
          assert.deepEqual(inZone, [], "SIGTERM removes the record");
          return;
        }
        assert.equal(inZone.length, 1, `SIGKILL leaves the first record: ${dump(r)}`);
        const journal = readFileSync(join(h, "certs", names[0] as string, "dns-records.json"), "utf8");
        assert.ok(journal.includes((inZone[0] as string).split(" ")[1] as string), journal);
        assert.ok(!journal.includes(bind.secrets["wile-test"] as string));
        relay.release();
        // The next run for that certificate (or cron's sweep) removes it, through the same provider, and says so.
        const again = await runWile(next === "issue" ? args : ["renew", "--all"], { home: h });
        assert.equal(again.code, 0, dump(again));
        assert.match(
          again.stderr,
          new RegExp(
            `removed TXT ${(inZone[0] as string).replace(/\./g, "\\.")} \\(rfc2136 \\(${relay.serverArg}, key wile-test\\)\\), left by an earlier run that was interrupted or failed`,
          ),
        );
        assert.deepEqual(await leftTxt(names), []);
        assert.equal(existsSync(join(h, "certs", names[0] as string, "dns-records.json")), false);
      } finally {
        relay.stop();
      }
    });
  }
});
