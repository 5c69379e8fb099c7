/**
 * End to end: `wile cron` over a home of many certificates with its index (issue 13 part 2), against
 * Pebble. One certificate is issued for real and written again under 300 names
 * (test/helpers/clone-home.ts); one of them is made due by editing its renewal.json, and cron
 * renews that one and touches no other; a certificate dropped into the home by hand is noticed.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cloneHome } from "../helpers/clone-home";
import { issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

const N = 300;
const TEMPLATE = "tpl.scale.example";
let env: TestEnv;
let home: string;
let names: string[];

const wile = (args: string[]) => runWile(args, { home, timeoutMs: 60_000 });
const certHash = (name: string) =>
  createHash("sha256")
    .update(readFileSync(join(home, "certs", name, "cert.pem")))
    .digest("hex");
/** How many certificates cron -v says it checked in full. */
const fullChecks = (stderr: string) => Number(/(\d+) of \d+ certificates checked in full/.exec(stderr)?.[1]);
/** The index trusts no file younger than 50 ms, 2 s on whole-second file systems (src/store/cron-index.ts). */
const settle = () => new Promise((r) => setTimeout(r, 2100));

before(async () => {
  env = await startTestEnv();
  const root = tempDir("wile-e2e-cron-scale-");
  const template = join(root, "template");
  const issued = await runWile(issueArgs(env, [TEMPLATE]), { home: template });
  assert.equal(issued.code, 0, dump(issued));
  const checked = await runWile(["cron"], { home: template });
  assert.equal(checked.code, 0, dump(checked));
  home = join(root, "wile");
  names = cloneHome(template, TEMPLATE, N, home);
});

after(async () => {
  await env?.stop();
});

describe("cron over many certificates", () => {
  it("builds its index on the first run, then checks none in full and prints nothing", async () => {
    const first = await wile(["cron", "-v"]);
    assert.equal(first.code, 0, dump(first));
    assert.equal(fullChecks(first.stderr), N, first.stderr);
    await settle();
    const quiet = await wile(["cron"]);
    assert.equal(quiet.code, 0, dump(quiet));
    assert.equal(`${quiet.stdout}${quiet.stderr}`, "", "cron prints nothing when nothing is due");
    const again = await wile(["cron", "-v"]);
    assert.equal(fullChecks(again.stderr), 0, again.stderr);
  });

  it("renews the one certificate made due by hand and leaves every other file as it was", async () => {
    const due = names[7] as string;
    const hashes = new Map(names.map((n) => [n, certHash(n)]));
    const file = join(home, "certs", due, "renewal.json");
    const cfg = readFileSync(file, "utf8");
    // Pebble's certificates are valid 5 years: renewing 2000 days before the end is due now.
    writeFileSync(file, JSON.stringify({ ...JSON.parse(cfg), renewDays: 2000 }, null, 2));
    const r = await wile(["cron", "--json"]);
    assert.equal(r.code, 0, dump(r));
    assert.match(JSON.parse(r.stdout).summary, new RegExp(`^${N} checked, 1 renewed, 0 failed`));
    assert.notEqual(certHash(due), hashes.get(due), "the due certificate was renewed");
    const touched = names.filter((n) => n !== due && certHash(n) !== hashes.get(n));
    assert.deepEqual(touched, [], "no other certificate was renewed");
    writeFileSync(file, cfg);
  });

  it("notices a certificate dropped into the home by hand", async () => {
    const [added] = cloneHome(join(home, "..", "template"), TEMPLATE, 1, home, "hand");
    const r = await wile(["cron", "--json", "-v"]);
    assert.equal(r.code, 0, dump(r));
    const doc = JSON.parse(r.stdout) as { summary: string; certificates: { name: string; status: string }[] };
    assert.match(doc.summary, new RegExp(`^${N + 1} checked, 0 renewed, 0 failed`));
    assert.equal(doc.certificates.find((c) => c.name === added)?.status, "not-due");
    // The new one, and the one renewed (and restored) just before: the rest comes from the index.
    assert.equal(fullChecks(r.stderr), 2, r.stderr);
  });
});
