/**
 * The DNS leftovers journal (src/flow/dns-leftovers.ts): a record is noted before the provider adds
 * it and forgotten once removed; what a dead run noted is removed by the next run through the same
 * provider (secrets from the environment again), and what cannot be removed stays noted, until it is
 * given up after GIVE_UP_MS. Uses the exec provider with a real hook that logs its calls.
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { DnsRecord } from "../../../src/dns/provider";
import { execProvider } from "../../../src/dns/providers/exec";
import {
  DnsJournal,
  dnsJournalPath,
  dnsLeftovers,
  GIVE_UP_MS,
  journaled,
  removeDnsLeftovers,
} from "../../../src/flow/dns-leftovers";
import { sweepLeftovers } from "../../../src/store/leftovers";
import type { Logger } from "../../../src/util/log";

const base = mkdtempSync(join(tmpdir(), "wile-unit-dns-leftovers-"));
after(() => rmSync(base, { recursive: true, force: true }));

const record = (value: string): DnsRecord => ({
  fqdn: "_acme-challenge.x.example",
  value,
  identifier: "x.example",
  token: `tok-${value}`,
});

function setup(name: string, hookBody = "exit 0") {
  const home = join(base, name, "home");
  mkdirSync(join(home, "certs", "x.example"), { recursive: true });
  const log = join(base, name, "hook.log");
  const hook = join(base, name, "hook.sh");
  writeFileSync(hook, `#!/bin/sh\necho "$*" >> '${log}'\n${hookBody}\n`);
  chmodSync(hook, 0o755);
  const calls = () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []);
  return { home, hook, calls, file: dnsJournalPath(home, "x.example") };
}

function logger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    debug: () => {},
  };
}

describe("DNS leftovers", () => {
  test("noted before present, forgotten after cleanup; the entry holds no secret", async () => {
    const { hook, file, calls } = setup("roundtrip");
    const entry = { provider: "exec", command: hook };
    const p = journaled(
      execProvider.create({ command: hook, mode: "lego", timeout: 5 }, { logger: logger() }),
      entry,
      new DnsJournal(file),
    );
    await p.present(record("v1"));
    const noted = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(noted.records[0].provider, entry);
    assert.equal(noted.records[0].record.value, "v1");
    await p.cleanup(record("v1"));
    assert.ok(!existsSync(file), "forgotten");
    assert.deepEqual(calls(), [
      "present _acme-challenge.x.example. v1",
      "cleanup _acme-challenge.x.example. v1",
    ]);
  });

  test("a present that fails is cleaned at once; if that fails too, it stays noted", async () => {
    const { hook, file, calls } = setup("failing", "exit 1");
    const p = journaled(
      execProvider.create({ command: hook, mode: "lego", timeout: 5 }, { logger: logger() }),
      { provider: "exec", command: hook },
      new DnsJournal(file),
    );
    await assert.rejects(p.present(record("v2")), /failed/);
    assert.deepEqual(calls(), [
      "present _acme-challenge.x.example. v2",
      "cleanup _acme-challenge.x.example. v2",
    ]);
    assert.ok(existsSync(file), "kept for the next run: the hook may have added it");
  });

  test("the next run removes what a dead run noted, through the same provider, and says so", async () => {
    const { hook, file, calls } = setup("dead");
    const j = new DnsJournal(file);
    await j.add({ provider: "exec", command: hook }, record("v3"));
    const log = logger();
    assert.deepEqual(await removeDnsLeftovers(file, { logger: log, env: {} }), [
      "TXT _acme-challenge.x.example v3",
    ]);
    assert.deepEqual(calls(), ["cleanup _acme-challenge.x.example. v3"]);
    assert.match(
      log.lines.join("\n"),
      /info removed TXT _acme-challenge\.x\.example v3 \(exec .*\), left by an earlier run/,
    );
    assert.ok(!existsSync(file));
  });

  test("credentials come again from the environment; without them the record stays noted, then is given up", async () => {
    const { file } = setup("nocreds");
    const entry = { provider: "rfc2136", server: "127.0.0.1:9", tsigName: "k" };
    await new DnsJournal(file).add(entry, record("v4"));
    const log = logger();
    assert.deepEqual(await removeDnsLeftovers(file, { logger: log, env: {} }), []);
    assert.match(
      log.lines.join("\n"),
      /warn could not remove TXT _acme-challenge\.x\.example v4.*RFC2136_TSIG_SECRET.*the next run tries again/,
    );
    assert.ok(existsSync(file));
    const old = new Date(Date.now() - GIVE_UP_MS - 60_000).toISOString();
    rmSync(file);
    await new DnsJournal(file).add(entry, record("v4"), old);
    const later = logger();
    await removeDnsLeftovers(file, { logger: later, env: {} });
    assert.match(later.lines.join("\n"), /giving up after .*: remove it by hand/);
    assert.ok(!existsSync(file));
  });

  test("a record naming anything but a DNS name is ignored; a broken file is dropped", async () => {
    const { hook, file, calls } = setup("hostile");
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        records: [
          {
            provider: { provider: "exec", command: hook },
            record: { ...record("v5"), fqdn: "www.x.example; rm -rf /" },
            since: new Date().toISOString(),
          },
        ],
      }),
    );
    assert.deepEqual(await removeDnsLeftovers(file, { logger: logger(), env: {} }), []);
    assert.deepEqual(calls(), []);
    writeFileSync(file, "{not json");
    const log = logger();
    await removeDnsLeftovers(file, { logger: log, env: {} });
    assert.match(log.lines.join("\n"), /unreadable/);
    assert.ok(!existsSync(file));
  });

  test("cron's sweep removes them for every certificate", async () => {
    const { home, hook, file, calls } = setup("sweep");
    await new DnsJournal(file).add({ provider: "exec", command: hook }, record("v6"));
    await sweepLeftovers(home, logger(), [dnsLeftovers(home, {})]);
    assert.deepEqual(calls(), ["cleanup _acme-challenge.x.example. v6"]);
    assert.ok(!existsSync(file));
  });
});
