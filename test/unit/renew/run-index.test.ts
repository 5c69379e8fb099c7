/**
 * The index of `wile cron` (issue 13 part 2; src/store/cron-index.ts, src/renew/run-index.ts): a
 * certificate whose files are as the index recorded and whose next moment has not come is reported
 * without a full check; anything that changes the certificate directories is noticed. Real files
 * and wile's own main in this process; the CA (127.0.0.1:9) is never reached while nothing is due,
 * and a certificate that becomes due fails there, which is how the tests see that it was noticed.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ariCertId, parseCertificate } from "../../../src/crypto/x509";
import { AccountStore } from "../../../src/store/accounts";
import { CertStore } from "../../../src/store/certs";
import { indexPath } from "../../../src/store/cron-index";
import type { RenewalConfig } from "../../../src/store/renewal";
import { readState, writeState } from "../../../src/store/state";
import { runMainCaptured } from "../../helpers/run-main";
import { makeCa, otherKeyCsr, signLeaf, type TestCa } from "../../helpers/test-ca";
import { cleanupTempDirs, tempDir } from "../../helpers/wile";

const DAY = 86_400_000;
const SERVER = "https://127.0.0.1:9/dir";
const tmp = tempDir("wile-run-index-");
after(cleanupTempDirs);

let ca: TestCa;
let key: { keyPem: string; csrPem: string };
/** A leaf valid from `startDays` to `endDays` (days from now). */
function leaf(name: string, startDays = -1, endDays = 89): string {
  return signLeaf(ca, key.csrPem, {
    sans: [`DNS:${name}`],
    start: new Date(Date.now() + startDays * DAY),
    end: new Date(Date.now() + endDays * DAY),
  });
}

function renewalConfig(name: string, extra: Partial<RenewalConfig> = {}): RenewalConfig {
  const now = new Date().toISOString();
  return {
    version: 1,
    name,
    identifiers: [{ type: "dns", value: name }],
    challenge: { type: "http-01", webroots: { [name]: join(tmp, "webroot") } },
    keyType: "ec-256",
    server: SERVER,
    account: "default",
    email: [],
    mustStaple: false,
    preflight: false,
    resolve: [],
    reuseKey: false,
    createdAt: now,
    updatedAt: now,
    deploy: [],
    ...extra,
  };
}

/** Installs `pem` as a new version of `name`, with renewal.json and an ARI cache that is fresh for a day. */
async function addCert(home: string, name: string, pem = leaf(name)): Promise<void> {
  const store = new CertStore(home);
  await store.install(name, {
    privkeyPem: key.keyPem,
    certPem: pem,
    chainPem: ca.pem,
    fullchainPem: pem + ca.pem,
  });
  if (!(await store.readRenewal(name))) await store.writeRenewal(name, renewalConfig(name));
  const now = new Date();
  await writeState(home, name, {
    version: 1,
    failures: 0,
    ari: {
      certId: ariCertId(parseCertificate(pem)),
      checkedAt: now.toISOString(),
      nextCheck: new Date(now.getTime() + DAY).toISOString(),
    },
  });
}

async function makeHome(names: string[]): Promise<string> {
  const home = tempDir("wile-run-index-home-");
  await new AccountStore(home).writeRecord(SERVER, {
    url: "https://127.0.0.1:9/acct/1",
    directoryUrl: SERVER,
    contact: [],
    createdAt: new Date().toISOString(),
    keyType: "ec-256",
  });
  for (const n of names) await addCert(home, n);
  return home;
}

interface CronRun {
  code: number;
  stderr: string;
  certificates: { name: string; status: string; reason: string; renewAt?: string }[];
  /** How many certificates -v says were checked in full. */
  full: number;
}

async function cron(home: string, extra: string[] = []): Promise<CronRun> {
  const r = await runMainCaptured(["cron", "--home", home, "--json", "-v", ...extra]);
  const full = /(\d+) of \d+ certificates checked in full/.exec(r.stderr);
  assert.ok(full, `-v names the certificates checked in full:\n${r.stderr}`);
  const doc = JSON.parse(r.stdout) as { certificates: CronRun["certificates"] };
  return { code: r.code, stderr: r.stderr, certificates: doc.certificates, full: Number(full[1]) };
}

/** The index trusts no file younger than RACY_MS when a check begins (2 s on whole-second file systems). */
const settle = () => new Promise((r) => setTimeout(r, 2100));

const statusOf = (run: CronRun) => Object.fromEntries(run.certificates.map((c) => [c.name, c.status]));

before(() => {
  ca = makeCa(tmp, "wile index test CA");
  key = otherKeyCsr(tmp);
});

describe("cron index: unchanged certificates are not read again (issue 13 part 2)", () => {
  const names = ["a.example", "b.example", "c.example"];
  let home: string;
  let first: CronRun;

  before(async () => {
    home = await makeHome(names);
    await settle();
    first = await cron(home);
  });

  test("a home without an index: every certificate is checked in full, and the index written", () => {
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.full, 3);
    assert.deepEqual(statusOf(first), {
      "a.example": "not-due",
      "b.example": "not-due",
      "c.example": "not-due",
    });
    const index = JSON.parse(readFileSync(indexPath(home), "utf8"));
    assert.deepEqual(Object.keys(index.certs), names);
  });

  test("the next run checks none in full and reports exactly what the full check said", async () => {
    const again = await cron(home);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.full, 0);
    assert.deepEqual(again.certificates, first.certificates);
  });

  test("the next moment is the earliest of renewal (less 12 h), ARI check and notAfter - 1 day", async () => {
    const index = JSON.parse(readFileSync(indexPath(home), "utf8"));
    const state = await readState(home, "a.example");
    assert.equal(index.certs["a.example"].checkAt, state.ari?.nextCheck);
    // Once it has passed, the certificate is checked in full again (the index edited to say so).
    index.certs["a.example"].checkAt = new Date(Date.now() - 1000).toISOString();
    writeFileSync(indexPath(home), JSON.stringify(index));
    assert.equal((await cron(home)).full, 1);
  });
});

describe("cron index: what changes in the certificate directories is noticed", () => {
  let home: string;

  before(async () => {
    home = await makeHome(["a.example", "b.example", "c.example", "d.example", "e.example"]);
    await settle();
    await cron(home);
    await settle();
    const warm = await cron(home);
    assert.equal(warm.full, 0);
  });

  test("renewal.json edited in place (renewDays): due now, renewed (here: the CA is unreachable, so failed)", async () => {
    const file = join(home, "certs", "a.example", "renewal.json");
    const cfg = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(file, JSON.stringify({ ...cfg, renewDays: 1000 }, null, 2)); // same inode
    const run = await cron(home);
    assert.equal(run.full, 1);
    assert.equal(statusOf(run)["a.example"], "failed");
    assert.equal(statusOf(run)["b.example"], "not-due");
  });

  test("cert.pem replaced in place by one near its end: due, noticed", async () => {
    writeFileSync(join(home, "certs", "b.example", "cert.pem"), leaf("b.example", -89, 1)); // through the links
    const run = await cron(home);
    assert.ok(run.full >= 1);
    assert.equal(statusOf(run)["b.example"], "failed");
    assert.equal(statusOf(run)["c.example"], "not-due");
  });

  test("a renewal by another command (a new version installed): checked in full, its new moment shown", async () => {
    const before_ = (await cron(home)).certificates.find((c) => c.name === "c.example");
    await addCert(home, "c.example", leaf("c.example", -1, 30));
    const run = await cron(home);
    const after_ = run.certificates.find((c) => c.name === "c.example");
    assert.equal(after_?.status, "not-due");
    assert.notEqual(after_?.renewAt, before_?.renewAt);
    assert.ok(run.full >= 1);
  });

  test("state.json edited by hand (a backoff): waiting, said from then on", async () => {
    const state = await readState(home, "d.example");
    const file = join(home, "certs", "d.example", "state.json");
    const until = new Date(Date.now() + 3 * 3600_000).toISOString();
    writeFileSync(file, JSON.stringify({ ...state, failures: 2, nextAttempt: until, lastError: "by hand" }));
    const run = await cron(home);
    assert.equal(statusOf(run)["d.example"], "waiting");
    assert.match(run.certificates.find((c) => c.name === "d.example")?.reason ?? "", /by hand/);
  });

  test("a certificate added or removed by hand appears or disappears", async () => {
    await addCert(home, "f.example");
    rmSync(join(home, "certs", "e.example"), { recursive: true });
    const run = await cron(home);
    assert.equal(statusOf(run)["f.example"], "not-due");
    assert.equal(statusOf(run)["e.example"], undefined);
    const index = JSON.parse(readFileSync(indexPath(home), "utf8"));
    assert.equal(index.certs["e.example"], undefined);
  });

  test("the account record is part of what is checked: damaged, every certificate using it fails", async () => {
    const accountFile = join(new AccountStore(home).dir(SERVER, "default"), "account.json");
    const saved = readFileSync(accountFile);
    writeFileSync(accountFile, "{");
    const run = await cron(home);
    assert.ok(
      run.certificates.every((c) => c.status === "failed"),
      JSON.stringify(run.certificates),
    );
    writeFileSync(accountFile, saved);
  });
});

describe("cron index: damage and concurrency", () => {
  let home: string;

  before(async () => {
    home = await makeHome(["a.example", "b.example"]);
    await settle();
  });

  test("a corrupt index is rebuilt silently (one line with -v)", async () => {
    await cron(home);
    writeFileSync(indexPath(home), "{ not json");
    const quiet = await runMainCaptured(["cron", "--home", home]);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, "", "nothing said without -v");
    assert.equal((await cron(home)).full, 0, "rebuilt by the quiet run");
    writeFileSync(indexPath(home), JSON.stringify({ version: 1, wile: "0.0.0-other", files: [], certs: {} }));
    const run = await cron(home);
    assert.equal(run.full, 2);
    writeFileSync(indexPath(home), "garbage");
    const loud = await cron(home);
    assert.equal(loud.full, 2);
    assert.equal(loud.stderr.split("\n").filter((l) => /cron-index\.json is damaged/.test(l)).length, 1);
    JSON.parse(readFileSync(indexPath(home), "utf8"));
  });

  test("a lock left by a killed run is taken over and removed, the certificate checked in full", async () => {
    await cron(home);
    const lock = join(home, "certs", "a.example.lock");
    writeFileSync(
      lock,
      JSON.stringify({ pid: 2 ** 22 + 1, startedAt: new Date().toISOString(), id: "dead" }),
    );
    const run = await cron(home);
    assert.equal(run.full, 1);
    assert.equal(existsSync(lock), false, "the stale lock is gone");
    assert.equal((await cron(home)).full, 0);
  });

  test("two cron runs at once: one runs (and writes the index), the other exits 0 at once", async () => {
    rmSync(indexPath(home), { force: true });
    const [x, y] = await Promise.all([
      runMainCaptured(["cron", "--home", home, "--json"]),
      runMainCaptured(["cron", "--home", home, "--json"]),
    ]);
    assert.deepEqual([x.code, y.code], [0, 0]);
    const ran = [x, y].filter((r) => r.stdout !== "");
    assert.equal(ran.length, 1, "exactly one of them checked the certificates");
    assert.equal((await cron(home)).full, 0, "the index it wrote is whole and used");
  });
});
