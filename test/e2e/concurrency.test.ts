/**
 * End to end, issue 10 part 4: wile runs that meet on one home at the same moment. Each
 * certificate has a deploy command that sleeps, so the first run holds the certificate's lock
 * (which covers deciding, obtaining, installing and deploying) long enough for the others to
 * find it held. Exactly one renewal (archive versions), the stable pair and the deployed copy
 * intact, and every loser says which run holds the lock: its command, pid and start.
 */
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { certFiles, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, type RunResult, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "0" } });
});

after(async () => {
  await env?.stop();
});

/** "... by wile cron (pid 1234, since 2026-11-29 08:41:02 UTC)" for the given command. */
const heldBy = (command: string) =>
  new RegExp(`${command} \\(pid \\d+, since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\)`);

/** A fresh home with certificate `name` issued; its deploy command sleeps, then copies the fullchain. */
async function homeWith(name: string, extra: string[] = []) {
  const home = join(tempDir("wile-e2e-conc-"), "wile");
  const copy = join(home, "..", "deployed.pem");
  /** Made when a deploy starts. */
  const deploying = join(home, "..", "deploying");
  const cmd = `touch ${deploying} && sleep 1.5 && cp "$CERT_FULLCHAIN_PATH" ${copy}.tmp && mv ${copy}.tmp ${copy}`;
  const wile = (args: string[]) => runWile(args, { home, timeoutMs: 60_000 });
  const issueArgv = issueArgs(env, [name], ["--deploy", "command", "--deploy-cmd", cmd, ...extra]);
  const r = await wile(issueArgv);
  assert.equal(r.code, 0, dump(r));
  const versions = () => readdirSync(join(home, "certs", name, "archive")).length;
  /** The stable pair belongs together and the deployed copy is the current fullchain. */
  const intact = () => {
    const f = certFiles(home, name);
    const cert = readFileSync(f.cert, "utf8");
    assert.ok(new X509Certificate(cert).checkPrivateKey(createPrivateKey(readFileSync(f.privkey, "utf8"))));
    assert.equal(readFileSync(copy, "utf8"), readFileSync(f.fullchain, "utf8"), "deployed copy is current");
    const locks = [...readdirSync(home), ...readdirSync(join(home, "certs"))].filter((e) =>
      e.endsWith(".lock"),
    );
    assert.deepEqual(locks, [], "no lock left");
  };
  return { home, wile, versions, intact, issueArgv, deploying };
}

describe("concurrent runs on one home", () => {
  const figures: string[] = [];
  after(() => console.log(`reliability: concurrency ${figures.join("; ")}`));

  it("issue --force and renew --force of the same name at once: one renewal, the loser names the holder", async () => {
    const name = "both.conc.example";
    const h = await homeWith(name);
    const [issue, renew] = await Promise.all([
      h.wile([...h.issueArgv, "--force"]),
      h.wile(["renew", name, "--force"]),
    ]);
    const runs: Array<[string, RunResult]> = [
      [`wile issue ${name}`, issue],
      [`wile renew ${name}`, renew],
    ];
    const winners = runs.filter(([, r]) => r.code === 0);
    assert.equal(winners.length, 1, `exactly one succeeds:\n${dump(issue)}\n${dump(renew)}`);
    const [winner] = winners[0] as [string, RunResult];
    const [, loser] = runs.find(([, r]) => r.code !== 0) as [string, RunResult];
    assert.equal(loser.code, 1, dump(loser));
    assert.match(loser.stderr, new RegExp(`${name.replace(/\./g, "\\.")} is being worked on by `));
    assert.match(loser.stderr, heldBy(winner));
    assert.equal(h.versions(), 2, "exactly one renewal");
    h.intact();
    figures.push(`issue+renew winner="${winner}" renewals=${h.versions() - 1}`);
  });

  it("cron and deploy at once: the one that comes second names the first; no corruption", async () => {
    const name = "deploy.conc.example";
    const h = await homeWith(name, ["--renew-days", "3650"]);
    const [cron, deploy] = await Promise.all([h.wile(["cron"]), h.wile(["deploy", name])]);
    const renewals = h.versions() - 1;
    if (deploy.code === 0) {
      // deploy came first: cron left the certificate alone and says why (exit 1: cron mails it).
      assert.equal(cron.code, 1, dump(cron));
      assert.match(cron.stderr, heldBy(`wile deploy ${name}`));
      assert.equal(renewals, 0);
    } else {
      assert.equal(cron.code, 0, dump(cron));
      assert.equal(deploy.code, 1, dump(deploy));
      assert.match(deploy.stderr, heldBy("wile cron"));
      assert.equal(renewals, 1, "exactly one renewal");
    }
    h.intact();
    figures.push(`cron+deploy winner=${deploy.code === 0 ? "deploy" : "cron"} renewals=${renewals}`);
  });

  it("three cron at once with a due certificate: one renewal; the others say which cron runs", async () => {
    const name = "cron3.conc.example";
    const h = await homeWith(name, ["--renew-days", "3650"]);
    const runs = await Promise.all([0, 1, 2].map(() => h.wile(["cron", "-v"])));
    for (const r of runs) assert.equal(r.code, 0, dump(r));
    const losers = runs.filter((r) => /is renewing this home's certificates; nothing to do/.test(r.stderr));
    assert.equal(losers.length, 2, runs.map(dump).join("\n"));
    for (const r of losers) assert.match(r.stderr, heldBy("wile cron"));
    assert.equal(h.versions(), 2, "exactly one renewal");
    h.intact();
    figures.push(`3xcron renewals=${h.versions() - 1} losers=${losers.length}`);
  });

  it("renew NAME while cron works on NAME is told it is cron (pid, since); another name renews meanwhile", async () => {
    const name = "busy.conc.example";
    const other = "free.conc.example";
    const h = await homeWith(name, ["--renew-days", "3650"]);
    const r0 = await h.wile(issueArgs(env, [other]));
    assert.equal(r0.code, 0, dump(r0));
    rmSync(h.deploying);
    const cron = h.wile(["cron"]);
    // Once cron deploys what it renewed (holding the certificate's lock, done deciding on the other).
    for (let i = 0; i < 400 && !existsSync(h.deploying); i++) await new Promise((r) => setTimeout(r, 25));
    const [busy, free] = await Promise.all([
      h.wile(["renew", name, "--force"]),
      h.wile(["renew", other, "--force"]),
    ]);
    const c = await cron;
    assert.equal(c.code, 0, dump(c));
    assert.equal(busy.code, 1, dump(busy));
    assert.match(busy.stderr, heldBy("wile cron"));
    assert.doesNotMatch(busy.stderr, /another wile cron or renew --all is running/);
    assert.equal(free.code, 0, `a single renew of another name is not held up by cron:\n${dump(free)}`);
    assert.equal(h.versions(), 2, "cron's renewal only");
    h.intact();
  });
});
