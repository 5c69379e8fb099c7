/**
 * Issue 10, part 2: a broken network between wile and the CA. Every run goes through its own
 * fault proxy (test/helpers/fault-proxy.ts) in front of one Pebble, started without nonce
 * rejection and with every valid authorization reused, so that a clean run always makes the same
 * requests. Two clean runs first give the requests of an issuance (account registration, http-01
 * challenge) and of a forced renewal (the order is ready at once, the authorization reused); then
 *   - reset-before / reset-after: the connection is reset at each of those requests in turn (each
 *     step: an order poll repeated at once counts as one), before it reaches Pebble, or after
 *     Pebble answered (Pebble did the work, wile never heard);
 *   - outage-from-step: the network goes away at each step in turn (that request reset after Pebble
 *     answered, every later one before it reaches Pebble), so the run fails at that point;
 *   - drop-1-in-3: every request is dropped (reset before or after) with odds 1 in 3, from seeds
 *     printed in the summary (WILE_FAULT_SEED=<first seed> replays them);
 *   - latency-2s: every request waits 2 s before it is forwarded.
 * Each run either completes (exit 0, a certificate for the name and key that openssl verifies
 * against Pebble's root) or fails cleanly (exit 1, an error line naming the CA URL or the CA, no
 * stack trace, no internal error); a failed `issue` leaves no certificate files, a failed
 * `renew --force` leaves the current pair untouched and state.json recording the failure with a
 * backoff; a rerun without faults completes. The faulty run makes at most twice the requests of a
 * clean one; under random drops the bound is per fault instead (see dropBound). Requests are
 * counted as steps: an order poll repeated at once is the CA saying "not yet", paced by wile's poll
 * backoff and Pebble's timing, not a retry. One summary line per mode:
 * `reliability: network-faults <mode> runs= ok= clean-fail= other= requests max=..x clean`.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { keyMatchesCert, sanNames, verifyChain } from "../helpers/certs";
import { certFiles, hasStackTrace, issueArgs, snapshot } from "../helpers/e2e";
import { type Fault, type FaultRequest, startFaultProxy } from "../helpers/fault-proxy";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, type RunResult, runWile, tempDir } from "../helpers/wile";

type Command = "issue" | "renew";

interface Case {
  /** Unique, for the certificate name. */
  id: string;
  command: Command;
  fault: Fault;
}

interface Outcome {
  kind: "ok" | "clean-fail" | "other";
  /** Requests (steps) of the faulty run over those of the clean run of the same command. */
  ratio: number;
  /** Requests made, not counting polls repeated at once (the proxy's steps). */
  requests: number;
  faults: number;
  /** Why the case is "other", with the run's output. */
  problems: string[];
  ms: number;
}

const PARALLEL = 4;
const DROP_SEEDS = 8;

let env: TestEnv;
let root: string;
const clean: Record<Command, FaultRequest[]> = { issue: [], renew: [] };

/** At most PARALLEL wile runs at once, across the concurrent tests below. */
let slots = PARALLEL;
const waiting: Array<() => void> = [];
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (slots === 0) await new Promise<void>((r) => waiting.push(r));
  else slots--;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else slots++;
  }
}

function command(c: Command, penv: TestEnv, name: string): string[] {
  return c === "issue" ? issueArgs(penv, [name]) : ["renew", name, "--force"];
}

/** The stable pair is for `name`, belongs together and verifies to Pebble's root; else what is wrong. */
function certProblems(home: string, name: string): string[] {
  const f = certFiles(home, name);
  if (!existsSync(f.cert)) return [`no ${f.cert}`];
  const out: string[] = [];
  if (sanNames(f.cert).join(",") !== name) out.push(`certificate names ${sanNames(f.cert).join(",")}`);
  if (!keyMatchesCert(f.privkey, f.cert).match) out.push("key does not match the certificate");
  const v = verifyChain(root, f.chain, f.cert, env.tmp);
  if (!/: OK$/.test(v)) out.push(`openssl verify: ${v}`);
  return out;
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
}

/** A clean failure: exit 1 and an error line naming what failed, no stack trace, no internal error. */
function failureProblems(r: RunResult): string[] {
  const out: string[] = [];
  if (r.code !== 1) out.push(`exit ${r.code}`);
  if (!/^error: .*(https:\/\/|the CA)/m.test(r.stderr)) out.push("no error line naming the CA or its URL");
  if (/^error: .*cannot reach/m.test(r.stderr) && !/^error: .*\(\d+ attempts\)$/m.test(r.stderr)) {
    out.push("a network error that does not say how many attempts were made");
  }
  if (hasStackTrace(r.stderr)) out.push("stack trace");
  if (/internal error|bug in wile/i.test(r.stderr)) out.push("internal error");
  return out;
}

async function runCase(c: Case): Promise<Outcome> {
  const proxy = await startFaultProxy(env);
  try {
    const penv = { ...env, directoryUrl: proxy.directoryUrl };
    const home = join(tempDir("wile-e2e-faults-"), "wile");
    const name = `${c.id}.faults.example`;
    const problems: string[] = [];
    const run = (args: string[], timeoutMs = 120_000) => limited(() => runWile(args, { home, timeoutMs }));

    let current: Record<string, string> | undefined;
    let stateBefore: Record<string, unknown> | undefined;
    if (c.command === "renew") {
      const first = await run(issueArgs(penv, [name]));
      assert.equal(first.code, 0, dump(first));
      current = snapshot(home, name);
      stateBefore = existsSync(join(certFiles(home, name).dir, "state.json"))
        ? readJson(join(certFiles(home, name).dir, "state.json"))
        : {};
    }

    proxy.setFault(c.fault);
    const r = await run(command(c.command, penv, name));
    const requests = proxy.requests.at(-1)?.step ?? 0;
    const faults = proxy.faults();
    const f = certFiles(home, name);
    let kind: Outcome["kind"];
    if (r.code === 0) {
      kind = "ok";
      problems.push(...certProblems(home, name));
      if (hasStackTrace(r.stderr)) problems.push("stack trace");
      if (current && snapshot(home, name).cert === current.cert)
        problems.push("exit 0 but the old certificate");
    } else {
      kind = "clean-fail";
      problems.push(...failureProblems(r));
      if (c.command === "issue") {
        for (const file of [f.cert, f.privkey, f.fullchain, f.renewal]) {
          if (existsSync(file)) problems.push(`a failed first issue left ${file}`);
        }
      } else {
        if (JSON.stringify(snapshot(home, name)) !== JSON.stringify(current)) {
          problems.push("a failed renewal changed the stable files");
        }
        problems.push(...certProblems(home, name));
        const state = readJson(join(f.dir, "state.json"));
        const failures = Number(state.failures);
        if (!(failures === Number(stateBefore?.failures ?? 0) + 1))
          problems.push(`state.json failures=${failures}`);
        if (typeof state.lastError !== "string" || state.lastError === "")
          problems.push("no lastError in state.json");
        if (!(typeof state.nextAttempt === "string" && Date.parse(state.nextAttempt) > Date.now())) {
          problems.push(`state.json nextAttempt=${String(state.nextAttempt)}, not a backoff`);
        }
      }
    }

    proxy.setFault({ kind: "none" });
    const again = await run(
      c.command === "issue" ? [...command("issue", penv, name), "--force"] : command("renew", penv, name),
    );
    if (again.code !== 0) problems.push(`the rerun without faults failed:\n${dump(again)}`);
    else problems.push(...certProblems(home, name).map((p) => `after the rerun: ${p}`));

    if (problems.length > 0)
      problems.push(`faulty run (${requests} requests, ${faults} faults):\n${dump(r)}`);
    return {
      kind: problems.length > 0 ? "other" : kind,
      ratio: requests / steps(c.command),
      requests,
      faults,
      problems,
      ms: r.ms,
    };
  } finally {
    await proxy.stop();
  }
}

/**
 * Under random drops the 2x bound cannot hold on average: a dropped request is sent again (one
 * more), and a dropped signed request needs a fresh nonce first (one more), so at odds 1 in 3 the
 * expected total is about 2.1x a clean issuance. What must hold instead is that every extra request
 * comes from a fault: at most 3 per fault (a repeated finalize or challenge answer also reads the
 * order or authorization).
 */
const dropBound = (c: Case, o: Outcome) => steps(c.command) + 3 * o.faults;

async function runMode(mode: string, cases: Case[], bound: (c: Case, o: Outcome) => number, note = "") {
  const outcomes = await Promise.all(cases.map((c) => runCase(c)));
  const count = (k: Outcome["kind"]) => outcomes.filter((o) => o.kind === k).length;
  const max = Math.max(...outcomes.map((o) => o.ratio));
  console.log(
    `reliability: network-faults ${mode} runs=${cases.length} ok=${count("ok")} clean-fail=${count("clean-fail")} other=${count("other")} requests max=${max.toFixed(2)}x clean${note}`,
  );
  if (process.env.WILE_FAULT_DEBUG) {
    for (const [i, o] of outcomes.entries()) {
      console.log(`  ${cases[i]?.id}: ${o.kind} ${o.requests} requests, ${o.faults} faults, ${o.ms} ms`);
    }
  }
  const others = outcomes.flatMap((o, i) => o.problems.map((p) => `${cases[i]?.id}: ${p}`));
  assert.deepEqual(others, [], others.join("\n\n"));
  outcomes.forEach((o, i) => {
    const c = cases[i] as Case;
    assert.ok(
      o.requests <= bound(c, o),
      `${c.id}: ${o.requests} requests (${o.faults} faults), bound ${bound(c, o)}`,
    );
  });
  return outcomes;
}

/** One reset per step of the clean run of each command. */
function resetCases(when: "before" | "after"): Case[] {
  return (["issue", "renew"] as const).flatMap((command) =>
    Array.from({ length: steps(command) }, (_, i) => ({
      id: `${when}-${command}-${i + 1}`,
      command,
      fault: { kind: "reset", step: i + 1, when } as const,
    })),
  );
}

const steps = (c: Command) => clean[c].at(-1)?.step ?? 0;

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "100" } });
  root = await env.pebbleRoot();
  const proxy = await startFaultProxy(env);
  try {
    const penv = { ...env, directoryUrl: proxy.directoryUrl };
    const home = join(tempDir("wile-e2e-faults-"), "wile");
    for (const c of ["issue", "renew"] as const) {
      proxy.setFault({ kind: "none" });
      const r = await runWile(command(c, penv, "clean.faults.example"), { home });
      assert.equal(r.code, 0, dump(r));
      clean[c] = proxy.requests;
    }
  } finally {
    await proxy.stop();
  }
});

after(async () => {
  await env?.stop();
});

describe("network faults between wile and the CA (fault proxy in front of Pebble)", {
  concurrency: true,
}, () => {
  it("a clean issuance and renewal make the requests the sweeps below fault one by one", () => {
    const keys = (c: Command) =>
      clean[c]
        .filter((r, i) => r.step !== clean[c][i - 1]?.step)
        .map((r) => r.key)
        .join(" ");
    assert.equal(
      keys("issue"),
      "GET /dir GET /nonce-plz POST /sign-me-up POST /sign-me-up POST /order-plz POST /authZ/ POST /chalZ/ POST /my-order/ POST /finalize-order/ POST /my-order/ POST /certZ/",
    );
    assert.equal(
      keys("renew"),
      "GET /dir GET /nonce-plz POST /order-plz POST /finalize-order/ POST /my-order/ POST /certZ/",
      "a renewal reuses the account and the authorization",
    );
    console.log(
      `network-faults: clean issue ${clean.issue.length} requests in ${steps("issue")} steps, clean renew ${clean.renew.length} in ${steps("renew")}`,
    );
  });

  for (const when of ["before", "after"] as const) {
    it(`a reset ${when} each request reaches Pebble: the run completes, a rerun completes, <= 2x the requests`, async () => {
      const cases = resetCases(when);
      const outcomes = await runMode(`reset-${when}`, cases, (c) => 2 * steps(c.command));
      assert.ok(
        outcomes.every((o) => o.faults === 1),
        "every run was hit by exactly its one reset",
      );
      // One reset is what retries are for: wile must get through it, not only fail cleanly.
      assert.deepEqual(
        outcomes.map((o, i) => `${cases[i]?.id}: ${o.kind}`),
        cases.map((c) => `${c.id}: ok`),
      );
    });
  }

  it("an outage from each step on: fails cleanly at that point, nothing half-installed, the failure recorded with a backoff, a rerun completes", async () => {
    const cases = (["issue", "renew"] as const).flatMap((command) =>
      Array.from(
        { length: steps(command) },
        (_, i): Case => ({
          id: `outage-${command}-${i + 1}`,
          command,
          fault: { kind: "outage", step: i + 1 },
        }),
      ),
    );
    const outcomes = await runMode("outage-from-step", cases, (c) => 2 * steps(c.command));
    assert.deepEqual(
      outcomes.map((o) => o.kind),
      cases.map(() => "clean-fail"),
    );
  });

  it("1 in 3 requests dropped at random (seeded): completes or fails cleanly, a rerun completes, every extra request explained by a fault", async () => {
    const first = Number(process.env.WILE_FAULT_SEED ?? 1 + Math.floor(Math.random() * 1_000_000));
    const cases = Array.from(
      { length: DROP_SEEDS },
      (_, i): Case => ({
        id: `drop-${first + i}`,
        command: i % 2 === 0 ? "issue" : "renew",
        fault: { kind: "drop", oneIn: 3, seed: first + i },
      }),
    );
    const outcomes = await runMode(
      "drop-1-in-3",
      cases,
      dropBound,
      ` seeds=${first}..${first + DROP_SEEDS - 1}`,
    );
    assert.ok(
      outcomes.some((o) => o.faults > 0),
      "some request was dropped",
    );
  });

  it("2 s latency on every request: the issuance completes (wile's per-request timeout is 30 s)", async () => {
    const outcomes = await runMode(
      "latency-2s",
      [{ id: "latency", command: "issue", fault: { kind: "latency", ms: 2000 } }],
      (c) => 2 * steps(c.command),
    );
    const o = outcomes[0] as Outcome;
    assert.equal(o.kind, "ok");
    console.log(`network-faults latency-2s: ${o.requests} requests in ${(o.ms / 1000).toFixed(1)} s`);
    assert.ok(o.ms >= 2000 * o.requests, "every request waited 2 s");
  });

  after(() => {
    // Every run, failed or not, removed its challenge files from the shared webroot.
    const dir = join(env.webroot, ".well-known", "acme-challenge");
    assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], []);
  });
});
