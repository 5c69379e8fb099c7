/**
 * Fuzz of the readers of the home's JSON files: renewal.json (src/store/renewal.ts), state.json
 * (state.ts), config.json (config.ts) and account.json (accounts.ts). The files are read from disk as
 * wile reads them, damaged: fields of the wrong type, deleted, nested, added, text cut short. Each
 * reader gives a checked value or its typed error: WileError for renewal.json and account.json,
 * UsageError for config.json; state.json is a cache and never fails (a damaged one reads as empty).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import { AccountStore } from "../../../src/store/accounts";
import { configPath, parseConfig, readConfig } from "../../../src/store/config";
import { parseRenewalConfig, serializeRenewalConfig } from "../../../src/store/renewal";
import { emptyState, inspectState, parseState, readState, statePath } from "../../../src/store/state";
import { UsageError, WileError } from "../../../src/util/errors";
import { renewalConfig } from "../../helpers/renewal";
import { fuzz, onlyRejects, onlyThrows } from "./fuzz";
import { type Json, jsonFileText } from "./mutate";

// 10 000 writes and reads per file: on tmpfs when there is one (a tenth of the time on a busy disk).
/** A message about a damaged file is one line of printable text, whatever bytes the file holds. */
function oneLine(message: string): void {
  assert.match(message, /^[ -~]+$/, `not one printable line: ${JSON.stringify(message)}`);
}

const home = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "wile-fuzz-store-"));
after(() => rmSync(home, { recursive: true, force: true }));

/** renewal.json with every optional field; fixed dates, so that a seed replays the same cases. */
const renewal = {
  ...renewalConfig("fuzz.example.org", [
    { kind: "files", dir: "/etc/ssl/fuzz" },
    { kind: "command", command: "systemctl reload nginx" },
  ]),
  identifiers: [
    { type: "dns", value: "fuzz.example.org" },
    { type: "ip", value: "192.0.2.7" },
  ],
  challenge: { type: "http-01", webroots: { "fuzz.example.org": "/srv/www", "192.0.2.7": "/srv/ip" } },
  caBundle: "/etc/wile/ca.pem",
  email: ["ops@example.org"],
  preferredChain: "ISRG Root X1",
  profile: "shortlived",
  renewDays: 30,
  resolve: ["fuzz.example.org:80:127.0.0.1"],
  createdAt: "2026-11-29T08:00:00.000Z",
  updatedAt: "2026-11-29T08:00:00.000Z",
} as Json;

test("fuzz: renewal.json reads as a checked RenewalConfig or a WileError naming the file", async (t) => {
  await fuzz(
    t,
    "renewal.json",
    0x4e4,
    fc.property(jsonFileText(renewal), (text) => {
      const r = onlyThrows(WileError, () => parseRenewalConfig(text, "/home/x/certs/fuzz/renewal.json"));
      if (!r.ok) {
        assert.match(r.error.message, /\/home\/x\/certs\/fuzz\/renewal\.json/);
        oneLine(r.error.message);
        return;
      }
      const cfg = r.value;
      // Every identifier has its own webroot, an absolute path (not one inherited from Object.prototype).
      for (const id of cfg.identifiers) {
        assert.ok(Object.hasOwn(cfg.challenge.webroots, id.value), `no webroot of its own for ${id.value}`);
        assert.match(cfg.challenge.webroots[id.value] as string, /^\//);
      }
      // What was accepted is written and read back unchanged.
      assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(cfg), "renewal.json"), cfg);
    }),
  );
});

const state: Json = {
  version: 1,
  failures: 2,
  lastAttempt: "2026-11-29T08:00:00.000Z",
  lastSuccess: "2026-11-01T08:00:00.000Z",
  lastError: "the CA refused the request",
  nextAttempt: "2026-11-29T09:40:00.000Z",
  ari: {
    certId: "aGVsbG8.AMD_7gEjRWeJ",
    checkedAt: "2026-11-29T08:00:00.000Z",
    nextCheck: "2026-11-29T14:00:00.000Z",
    windowStart: "2026-12-20T00:00:00.000Z",
    windowEnd: "2026-12-22T00:00:00.000Z",
    chosen: "2026-12-21T03:00:00.000Z",
    explanationURL: "https://ca.example/ari-explained",
    error: "HTTP 503",
    errors: 1,
  },
  deployPending: { serial: "00C0FFEE", error: "nginx -t failed", since: "2026-11-29T08:00:00.000Z" },
};

test("fuzz: state.json never fails to read: what is well formed is kept, the rest dropped and named in one line", async (t) => {
  mkdirSync(join(home, "certs", "s.example"), { recursive: true });
  await fuzz(
    t,
    "state.json",
    0x57a,
    fc.asyncProperty(jsonFileText(state), async (text) => {
      writeFileSync(statePath(home, "s.example"), text);
      const s = await readState(home, "s.example");
      // What list and cron show of the damage: one line, and the same state.
      const inspected = await inspectState(home, "s.example");
      assert.deepEqual(inspected.state, s);
      if (inspected.damage !== undefined) oneLine(inspected.damage);
      // What is on disk: UTF-8, where a lone surrogate became U+FFFD.
      const onDisk = Buffer.from(text, "utf8").toString("utf8");
      let parsed: unknown;
      try {
        parsed = JSON.parse(onDisk);
      } catch {
        assert.deepEqual(s, emptyState());
        return;
      }
      assert.deepEqual(s, parseState(parsed));
      assert.ok(Number.isInteger(s.failures) && s.failures >= 0);
      // Reading it back after a write keeps it.
      assert.deepEqual(parseState(JSON.parse(JSON.stringify(s))), JSON.parse(JSON.stringify(s)));
    }),
  );
});

const config: Json = {
  version: 1,
  email: ["ops@example.org"],
  notifyCmd: "/usr/local/bin/page-me",
  notifyUrl: "https://hooks.example.org/wile",
  heartbeatUrl: "https://hc.example.org/ping/abc",
  notifyOn: "failure",
  cron: { minute: 17, hours: [3, 15] },
};

test("fuzz: config.json reads as a checked HomeConfig or a UsageError naming the file", async (t) => {
  const cfgHome = join(home, "config-home");
  mkdirSync(cfgHome);
  await fuzz(
    t,
    "config.json",
    0xc0f,
    fc.asyncProperty(jsonFileText(config), async (text) => {
      writeFileSync(configPath(cfgHome), text);
      const r = await onlyRejects(UsageError, () => readConfig(cfgHome));
      if (!r.ok) {
        assert.ok(r.error.message.startsWith(`${configPath(cfgHome)} is broken: `), r.error.message);
        oneLine(r.error.message);
        return;
      }
      assert.deepEqual(parseConfig(JSON.parse(JSON.stringify(r.value))), r.value);
    }),
  );
});

const account: Json = {
  url: "https://ca.example/acme/acct/1",
  directoryUrl: "https://ca.example/dir",
  contact: ["mailto:ops@example.org"],
  createdAt: "2026-11-29T08:00:00.000Z",
  keyType: "ec-256",
  eabKid: "kid-1",
};

test("fuzz: account.json reads as an AccountRecord or a WileError naming the file", async (t) => {
  const store = new AccountStore(join(home, "account-home"));
  const dir = "https://ca.example/dir";
  mkdirSync(store.dir(dir), { recursive: true });
  const file = join(store.dir(dir), "account.json");
  await fuzz(
    t,
    "account.json",
    0xacc,
    fc.asyncProperty(jsonFileText(account), async (text) => {
      writeFileSync(file, text);
      const r = await onlyRejects(WileError, () => store.readRecord(dir));
      if (!r.ok) {
        assert.ok(r.error.message.includes(file), r.error.message);
        oneLine(r.error.message);
        return;
      }
      const rec = r.value;
      assert.ok(rec !== null);
      for (const f of ["url", "directoryUrl", "createdAt", "keyType"] as const)
        assert.equal(typeof rec[f], "string");
      assert.ok(rec.contact.every((c) => typeof c === "string"));
      assert.ok(rec.eabKid === undefined || typeof rec.eabKid === "string");
    }),
  );
});
