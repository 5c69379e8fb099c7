/**
 * End to end, issue 10 part 3: `kill -9` at random instants of a first `issue` (in a fresh home:
 * account registration included), `issue --force`, `renew --force`, `cron` (a due certificate)
 * and `account rollover`, each certificate deployed to two targets (files, and a command that
 * writes a combined PEM). After every kill:
 *   - the stable key/certificate pair of each certificate parses and belongs together;
 *   - every deployed file is a complete file of a version seen in the archive (never partial,
 *     never a combined file with the key of one version and the chain of another);
 *   - the account key parses;
 * then the next run (`cron`; after a rollover every other time `issue --force`; after a first
 * issue the same issue, and cron if that says "not due" as the killed run had installed) completes, and
 * after it no lock, no pending rollover and no pending deploy is left and every deployed file is
 * the current version's. Certificate A is not due (so `cron` deploys it only if the killed run
 * left its deploy unfinished); B is always due (--renew-days 3650), so every `cron` renews it.
 *
 * Kill instants: half at a random delay across the measured duration of the command, half when
 * stderr (-v) reaches a random line of it. Seeded: WILE_CRASH_SEED=<n> repeats the choices (the
 * timing of the machine still varies); WILE_CRASH_KILLS (default 200) and WILE_CRASH_HOMES
 * (default 4, run in parallel) size the run. The process group is killed, as a power cut would:
 * a deploy command's own half-written temp file is its business (it renames when done).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { issueArgs } from "../helpers/e2e";
import { mulberry32 } from "../helpers/fault-proxy";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { tempDir, wileCommand } from "../helpers/wile";

const KILLS = Number(process.env.WILE_CRASH_KILLS ?? 200);
const HOMES = Number(process.env.WILE_CRASH_HOMES ?? 4);
const SEED = Number(process.env.WILE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** first: the first `issue` in a fresh home (account registration included); issue: `issue --force`. */
const KINDS = ["first", "issue", "renew", "cron", "rollover"] as const;
type Kind = (typeof KINDS)[number];

let env: TestEnv;

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "0" } });
});

after(async () => {
  await env?.stop();
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
  killed: boolean;
}

const fakeHome = tempDir("wile-crash-fakehome-");

/**
 * Runs wile in its own process group; kills the group with SIGKILL after `killAfterMs`, or when
 * stderr has `killAtLine` complete lines, whichever is given (and comes before the exit).
 */
function runWile(
  args: string[],
  home: string,
  kill: { afterMs?: number; atLine?: number; thenMs?: number } = {},
) {
  const [cmd, ...lead] = wileCommand() as [string, ...string[]];
  const child = spawn(cmd, [...lead, ...args], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: fakeHome,
      LANG: "C.UTF-8",
      NO_COLOR: "1",
      WILE_HOME: home,
    },
  });
  const started = Date.now();
  let stderr = "";
  let killed = false;
  let exited = false;
  let reached = false;
  const killNow = () => {
    if (exited || killed) return;
    killed = true;
    try {
      process.kill(-(child.pid as number), "SIGKILL");
    } catch {}
  };
  const timer = kill.afterMs !== undefined ? setTimeout(killNow, kill.afterMs) : undefined;
  const guard = setTimeout(killNow, 120_000);
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString("utf8");
    if (!reached && kill.atLine !== undefined && stderr.split("\n").length - 1 >= kill.atLine) {
      reached = true;
      setTimeout(killNow, kill.thenMs ?? 0);
    }
  });
  return new Promise<Run>((resolve) => {
    child.on("close", (code, signal) => {
      exited = true;
      clearTimeout(timer);
      clearTimeout(guard);
      resolve({ code, signal, stderr, ms: Date.now() - started, killed: killed && signal === "SIGKILL" });
    });
  });
}

interface Version {
  privkey: string;
  cert: string;
  fullchain: string;
}

/** One home: certificate A (not due) and B (always due), each deployed to files and a command. */
class Home {
  readonly dir: string;
  readonly names: string[];
  /** Every complete version seen per name, by archive stamp. */
  readonly versions = new Map<string, Map<string, Version>>();
  readonly violations: string[] = [];
  /** A run has completed here (and its deployed files were checked). */
  completedOnce = false;

  constructor(
    readonly index: number,
    names = [`a-${index}.crash.example`, `b-${index}.crash.example`],
  ) {
    this.dir = join(tempDir("wile-crash-"), "wile");
    this.names = names;
    for (const n of this.names) this.versions.set(n, new Map());
  }

  out(name: string, target: "files" | "cmd"): string {
    const d = join(this.dir, "..", `${target}-${name}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  issueArgs(name: string, extra: string[] = []): string[] {
    const files = this.out(name, "files");
    const cmd = this.out(name, "cmd");
    // The command writes key + fullchain as one file, atomically (temp file, then mv).
    const script = `umask 077; cat "$CERT_KEY_PATH" "$CERT_FULLCHAIN_PATH" > ${cmd}/.c.$$ && mv ${cmd}/.c.$$ ${cmd}/combined.pem`;
    return issueArgs(
      env,
      [name],
      [
        ...[
          "--deploy",
          "files",
          "--cert-file",
          join(files, "cert.pem"),
          "--key-file",
          join(files, "key.pem"),
        ],
        ...["--fullchain-file", join(files, "fullchain.pem"), "--combined-file", join(files, "combined.pem")],
        ...["--deploy", "command", "--deploy-cmd", script],
        ...extra,
      ],
    );
  }

  argv(kind: Kind): string[] {
    const a = this.names[0] as string;
    switch (kind) {
      case "first":
        return [...this.issueArgs(a), "-v"];
      case "issue":
        return [...this.issueArgs(a, ["--force"]), "-v"];
      case "renew":
        return ["renew", a, "--force", "-v"];
      case "cron":
        return ["cron", "-v"];
      case "rollover":
        return ["account", "rollover", "-v", "--server", env.directoryUrl, "--ca-bundle", env.caBundle];
    }
  }

  accountKey(): string {
    return join(
      this.dir,
      "accounts",
      `127.0.0.1_${new URL(env.directoryUrl).port}`,
      "default",
      "account.key",
    );
  }

  /** Reads every complete version in the archives into `versions`. */
  collect(): void {
    for (const name of this.names) {
      const archive = join(this.dir, "certs", name, "archive");
      for (const stamp of existsSync(archive) ? readdirSync(archive) : []) {
        const v = join(archive, stamp);
        if (!existsSync(join(v, ".complete"))) continue;
        const read = (f: string) => readFileSync(join(v, f), "utf8");
        this.versions.get(name)?.set(stamp, {
          privkey: read("privkey.pem"),
          cert: read("cert.pem"),
          fullchain: read("fullchain.pem"),
        });
      }
    }
  }

  /** What must hold at any instant; `settled` adds what must hold after a completed run. */
  check(when: string, settled: boolean): void {
    this.collect();
    this.completedOnce ||= settled;
    const bad = (what: string) => this.violations.push(`home ${this.index}, ${when}: ${what}`);
    for (const name of this.names) {
      const dir = join(this.dir, "certs", name);
      if (!settled && !existsSync(join(dir, "current"))) {
        // A first issue killed before its certificate was installed: nothing may be deployed.
        for (const t of ["files", "cmd"] as const)
          if (readdirSync(this.out(name, t)).some((f) => f.endsWith(".pem")))
            bad(`${name}: deployed files without an installed certificate`);
        continue;
      }
      let current: Version;
      try {
        current = {
          privkey: readFileSync(join(dir, "privkey.pem"), "utf8"),
          cert: readFileSync(join(dir, "cert.pem"), "utf8"),
          fullchain: readFileSync(join(dir, "fullchain.pem"), "utf8"),
        };
        if (!new X509Certificate(current.cert).checkPrivateKey(createPrivateKey(current.privkey)))
          bad(`${name}: privkey.pem does not match cert.pem`);
        if (!current.fullchain.startsWith(current.cert))
          bad(`${name}: fullchain.pem is not cert.pem + chain`);
      } catch (e) {
        bad(`${name}: the stable pair is unreadable: ${(e as Error).message}`);
        continue;
      }
      const seen = [...(this.versions.get(name)?.values() ?? [])];
      const files = this.out(name, "files");
      const deployed: Array<[string, (v: Version) => string]> = [
        [join(files, "cert.pem"), (v) => v.cert],
        [join(files, "key.pem"), (v) => v.privkey],
        [join(files, "fullchain.pem"), (v) => v.fullchain],
        [join(files, "combined.pem"), (v) => v.privkey + v.fullchain],
        [join(this.out(name, "cmd"), "combined.pem"), (v) => v.privkey + v.fullchain],
      ];
      for (const [file, of] of deployed) {
        // Before the first completed run (a first issue killed while deploying) a file may be missing.
        if (!existsSync(file) && !settled && !this.completedOnce) continue;
        const text = existsSync(file) ? readFileSync(file, "utf8") : "(missing)";
        if (!seen.some((v) => of(v) === text)) bad(`${file} is no complete file of any version`);
        else if (settled && of(current) !== text)
          bad(`${file} is not the current version's after a completed run`);
      }
      if (settled) {
        const state = join(dir, "state.json");
        if (existsSync(state) && JSON.parse(readFileSync(state, "utf8")).deployPending)
          bad(`${name}: a deploy is still pending after a completed run`);
      }
    }
    const account = join(this.accountKey(), "..");
    if (!settled && !existsSync(this.accountKey())) return; // a first issue killed before the key was stored
    try {
      createPrivateKey(readFileSync(this.accountKey(), "utf8"));
    } catch (e) {
      bad(`account.key is unreadable: ${(e as Error).message}`);
    }
    if (settled) {
      if (existsSync(join(account, "account.key.next")))
        bad("account.key.next is left after a completed run");
      const locks = [
        ...readdirSync(this.dir).filter((f) => f.endsWith(".lock")),
        ...readdirSync(join(this.dir, "certs")).filter((f) => f.endsWith(".lock")),
      ];
      if (locks.length > 0) bad(`locks left after a completed run: ${locks.join(", ")}`);
    }
  }
}

/** Temp files under `dir`: wile's (.tmp-, .wile-) and the deploy command's (.c.<pid>). */
function tempFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((p) =>
    /(^|\/)\.[^/]*(\.tmp-|\.wile-)[^/]*$|(^|\/)\.c\.\d+$/.test(p),
  );
}

interface Figures {
  kills: Record<Kind, number>;
  finished: Record<Kind, number>;
  nextRuns: number;
  nextOk: number;
  /** Kills that left account.key.next, and of those the ones the CA had taken (finished by the next run). */
  pendingRollovers: number;
  finishedRollovers: number;
  /** First issues killed after their certificate was installed (the rerun said "not due"). */
  firstInstalled: number;
  ms: Record<Kind, number[]>;
}

describe("kill -9 at random instants", () => {
  it(`${KILLS} kills across a first issue, issue --force, renew --force, cron and account rollover leave a usable home`, async () => {
    console.log(
      `crash: seed ${SEED} (WILE_CRASH_SEED=${SEED} repeats the choices), ${KILLS} kills, ${HOMES} homes`,
    );
    const started = Date.now();
    const homes = Array.from({ length: HOMES }, (_, i) => new Home(i));
    const zero = () => ({ first: 0, issue: 0, renew: 0, cron: 0, rollover: 0 });
    const fig: Figures = {
      kills: zero(),
      finished: zero(),
      nextRuns: 0,
      nextOk: 0,
      pendingRollovers: 0,
      finishedRollovers: 0,
      firstInstalled: 0,
      ms: { first: [], issue: [], renew: [], cron: [], rollover: [] },
    };
    const lines: Record<Kind, number[]> = { first: [], issue: [], renew: [], cron: [], rollover: [] };
    const failures: string[] = [];
    const expectOk = (home: Home, r: Run, what: string) => {
      if (r.code !== 0)
        failures.push(`home ${home.index}: ${what} exited ${r.code ?? r.signal}:\n${r.stderr}`);
      return r.code === 0;
    };

    // Set up each home, and measure every command once, unkilled, under the same load.
    await Promise.all(
      homes.map(async (h) => {
        const [a, b] = h.names as [string, string];
        expectOk(h, await runWile(h.issueArgs(a), h.dir), `issue ${a}`);
        expectOk(h, await runWile(h.issueArgs(b, ["--renew-days", "3650"]), h.dir), `issue ${b}`);
        const first = new Home(100 + h.index, [`first-${h.index}.crash.example`]);
        for (const kind of KINDS) {
          const r =
            kind === "first"
              ? await runWile(first.argv(kind), first.dir)
              : await runWile(h.argv(kind), h.dir);
          expectOk(h, r, `${kind} (measuring)`);
          fig.ms[kind].push(r.ms);
          lines[kind].push(r.stderr.split("\n").length - 1);
        }
        h.check("after setup", true);
      }),
    );
    assert.deepEqual(failures, [], failures.join("\n"));
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const durations = Object.fromEntries(KINDS.map((k) => [k, mean(fig.ms[k])])) as Record<Kind, number>;
    const lineCounts = Object.fromEntries(KINDS.map((k) => [k, Math.round(mean(lines[k]))])) as Record<
      Kind,
      number
    >;

    const fresh: Home[] = [];
    let next = 0;
    let killedTotal = 0;
    let attempts = 0;
    await Promise.all(
      homes.map(async (h) => {
        const rand = mulberry32(SEED + h.index);
        let rolloverNext = 0;
        while (killedTotal < KILLS && attempts < KILLS * 2 && failures.length === 0) {
          const i = next++;
          attempts++;
          const kind = KINDS[i % KINDS.length] as Kind;
          const byTime = rand() < 0.5;
          const kill = byTime
            ? { afterMs: Math.floor(rand() * durations[kind]) }
            : {
                atLine: 1 + Math.floor(rand() * lineCounts[kind]),
                thenMs: rand() < 0.5 ? 0 : Math.floor(rand() * 40),
              };
          // A first issue gets a fresh home of its own (kept for the figures).
          const home = kind === "first" ? new Home(1000 + i, [`first-${i}.crash.example`]) : h;
          if (home !== h) fresh.push(home);
          const r = await runWile(home.argv(kind), home.dir, kill);
          const at = byTime ? `${kill.afterMs} ms` : `stderr line ${kill.atLine} + ${kill.thenMs} ms`;
          if (r.killed) {
            killedTotal++;
            fig.kills[kind]++;
            home.check(`after kill -9 of ${kind} at ${at}`, false);
          } else {
            fig.finished[kind]++;
            expectOk(home, r, `${kind} (finished before the kill at ${at})`);
          }
          if (kind === "first") {
            // The next run: the same issue. Exit 3 if the killed one had installed the certificate
            // (not due); then cron deploys it, as the killed run had not finished its deploy.
            const again = await runWile(home.argv(kind), home.dir);
            fig.nextRuns++;
            if (again.code === 3) fig.firstInstalled++;
            const settled = again.code === 3 ? await runWile(["cron", "-v"], home.dir) : again;
            if (
              expectOk(
                home,
                settled,
                `the same issue after its kill at ${at}${again.code === 3 ? " (exit 3), then cron" : ""}`,
              )
            )
              fig.nextOk++;
            home.check(`after the next run (first issue killed at ${at})`, true);
            continue;
          }
          // The next run: cron; after a rollover every other time issue, so both use the account.
          const useIssue = kind === "rollover" && rolloverNext++ % 2 === 1;
          const pending = existsSync(`${h.accountKey()}.next`);
          const keyBefore = readFileSync(h.accountKey(), "utf8");
          const n = await runWile(useIssue ? h.argv("issue") : ["cron", "-v"], h.dir);
          fig.nextRuns++;
          if (expectOk(h, n, `the next run after ${kind} killed at ${at}`)) fig.nextOk++;
          if (pending) {
            fig.pendingRollovers++;
            if (readFileSync(h.accountKey(), "utf8") !== keyBefore) fig.finishedRollovers++;
          }
          h.check(`after the next run (${kind} killed at ${at})`, true);
        }
      }),
    );
    const violations = [...homes, ...fresh].flatMap((h) => h.violations);
    // Temp files of killed runs still there (each run removes those a minute old that it meets).
    const temps = [...homes, ...fresh].flatMap((h) => tempFiles(join(h.dir, "..")));
    if (process.env.WILE_CRASH_LIST_TEMPS) console.log(temps.join("\n"));
    const ms = (k: Kind) => Math.round(durations[k]);
    console.log(
      `reliability: crash kills=${killedTotal} (${KINDS.map((k) => `${k} ${fig.kills[k]}`).join(", ")}) ` +
        `finished-before-kill=${KINDS.reduce((s, k) => s + fig.finished[k], 0)} ` +
        `next-runs=${fig.nextRuns} next-ok=${fig.nextOk} violations=${violations.length} ` +
        `rollover-pending-after-kill=${fig.pendingRollovers} (finished by the next run ${fig.finishedRollovers}, rolled back ${fig.pendingRollovers - fig.finishedRollovers}) ` +
        `first-issue-killed-after-install=${fig.firstInstalled} temp-files-left=${temps.length} (under a minute old: the next run that meets them then removes them) measured-ms=(${KINDS.map((k) => `${k} ${ms(k)}`).join(", ")}) seed=${SEED} homes=${HOMES} ` +
        `wall=${Math.round((Date.now() - started) / 1000)}s`,
    );
    assert.deepEqual(failures, [], failures.join("\n"));
    assert.deepEqual(violations, [], violations.join("\n"));
    assert.ok(killedTotal >= KILLS, `only ${killedTotal} of ${KILLS} runs were killed before they finished`);
    for (const k of KINDS) assert.ok(fig.kills[k] > 0, `no ${k} was killed`);
  });
});
