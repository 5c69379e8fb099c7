/**
 * `npm run bench -- --quick [--cjs FILE] [--runs N]` (bench/run.ts dispatches here): wile alone, the smoke run of
 * the harness in scripts/test.sh (under ~10 s); figures for the budgets of issue 13, not assertions.
 *   - size of dist/wile.cjs;
 *   - `node dist/wile.cjs version` vs `node -e 0`, interleaved, median of 10 each;
 *   - one issuance against a local Pebble (no validation sleep) with the account already registered,
 *     a fresh name per run: wall time, user+sys CPU of the child and its peak RSS (GNU time), over
 *     5 runs (2 with --quick). Every run is checked (exit 0, cert.pem for the right name), so a fast
 *     failure cannot pass for a fast issuance; a failed run makes the benchmark exit 1;
 *   - `wile cron` over 1000 certificates, none due, against `node -e 0` (bench/cron-scale.ts, issue 13).
 * Prints a markdown table and writes .tmp/bench.json.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { sanNames } from "../test/helpers/certs";
import { issueArgs } from "../test/helpers/e2e";
import { startTestEnv } from "../test/helpers/testenv";
import { repoRoot, tempDir } from "../test/helpers/wile";
import { type CurvePoint, cronCurve, curveRows } from "./cron-scale";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    cjs: { type: "string" },
    // More runs of each case for recorded figures (issue 13: before/after on one machine).
    runs: { type: "string" },
  },
});
// Only --quick runs here (bench/full.ts is the comparison with other clients).
const quick = values.quick ?? false;
const cjs = resolve(values.cjs ?? join(repoRoot, "dist", "wile.cjs"));
const STARTUP_RUNS = Math.max(10, Number(values.runs ?? 0));
const ISSUE_RUNS = values.runs ? Number(values.runs) : quick ? 2 : 5;
const GNU_TIME = "/usr/bin/time";

// Issue 13's targets: startup over node -e 0 (also with NODE_EXTRA_CA_CERTS), issuance CPU and wall,
// peak RSS over node -e 0's.
const BUDGET = { bundleKB: 250, startupMs: 10, wallS: 0.1, cpuS: 0.06, rssOverNodeMB: 10 };
const SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt";

if (!existsSync(cjs)) {
  console.error(`bench: ${cjs} is missing: run npm run build first`);
  process.exit(1);
}
if (!existsSync(GNU_TIME)) {
  console.error(`bench: ${GNU_TIME} is missing: install the Debian package time`);
  process.exit(1);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const min = (xs: number[]) => Math.min(...xs);
const max = (xs: number[]) => Math.max(...xs);

const fakeHome = tempDir("wile-bench-home-");
const cleanEnv = (home: string): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: fakeHome,
  LANG: "C.UTF-8",
  NO_COLOR: "1",
  WILE_HOME: home,
});

// ---------------------------------------------------------------------------------------------
// 1. Bundle size
const bundleBytes = statSync(cjs).size;

// ---------------------------------------------------------------------------------------------
// 2. Startup: interleaved so that machine noise hits both sides alike.
function wallMs(cmd: string, args: string[], env: Record<string, string>): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr?.toString()}`);
  }
  return ms;
}

// A home that exists, as on a host where wile has run: the loader keeps the decompressed, compiled
// program in <home>/cache (the warm-up runs below write it).
const startupHome = join(tempDir("wile-bench-startup-"), "wile");
mkdirSync(startupHome, { mode: 0o700 });
const wileV: number[] = [];
const nodeE: number[] = [];
const wileVx: number[] = [];
const nodeEx: number[] = [];
const extraCa = existsSync(SYSTEM_CA) ? { NODE_EXTRA_CA_CERTS: SYSTEM_CA } : undefined;
const withCa = (e: Record<string, string>) => ({ ...e, ...extraCa });
const versionOut = spawnSync(process.execPath, [cjs, "version"], {
  env: cleanEnv(startupHome),
}).stdout.toString();
if (!/^wile \d/.test(versionOut)) {
  console.error(
    `bench: \`node ${cjs} version\` printed ${JSON.stringify(versionOut)}, expected "wile <version>"`,
  );
  process.exit(1);
}
for (let i = 0; i < 2; i++) {
  wallMs(process.execPath, ["-e", "0"], cleanEnv(startupHome));
  wallMs(process.execPath, [cjs, "version"], cleanEnv(startupHome));
}
for (let i = 0; i < STARTUP_RUNS; i++) {
  nodeE.push(wallMs(process.execPath, ["-e", "0"], cleanEnv(startupHome)));
  wileV.push(wallMs(process.execPath, [cjs, "version"], cleanEnv(startupHome)));
  if (!extraCa) continue;
  nodeEx.push(wallMs(process.execPath, ["-e", "0"], withCa(cleanEnv(startupHome))));
  wileVx.push(wallMs(process.execPath, [cjs, "version"], withCa(cleanEnv(startupHome))));
}

// Baseline for the CPU and RSS figures: what a bare `node -e 0` costs under GNU time.
const baseCpu: number[] = [];
const baseRss: number[] = [];
{
  const timesFile = join(tempDir("wile-bench-base-"), "time.txt");
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(GNU_TIME, ["-f", "%U %S %M", "-o", timesFile, process.execPath, "-e", "0"], {
      env: cleanEnv(startupHome),
    });
    if (r.status !== 0) throw new Error(`GNU time node -e 0 exited ${r.status}: ${r.stderr}`);
    const [u, s, m] = readFileSync(timesFile, "utf8").trim().split(/\s+/).slice(-3).map(Number) as [
      number,
      number,
      number,
    ];
    baseCpu.push(u + s);
    baseRss.push(m / 1024);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Issuance against local Pebble.
interface IssueRun {
  name: string;
  wallS: number;
  cpuS: number;
  userS: number;
  sysS: number;
  rssMB: number;
}

function timedRun(
  args: string[],
  home: string,
  timesFile: string,
): Promise<{ code: number; stderr: string; wallS: number }> {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(GNU_TIME, ["-f", "%U %S %M", "-o", timesFile, process.execPath, cjs, ...args], {
      env: cleanEnv(home),
      stdio: ["ignore", "ignore", "pipe"],
    });
    const err: Buffer[] = [];
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => {
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      resolvePromise({ code: code ?? -1, stderr: Buffer.concat(err).toString(), wallS });
    });
  });
}

// No badNonce retries in timed runs (Pebble rejects 5% of good nonces by default).
const env = await startTestEnv({ env: { PEBBLE_WFE_NONCEREJECT: "0" } });
const runs: IssueRun[] = [];
const SCALE_CERTS = 1000;
let scale: CurvePoint[] = [];
let failed = "";
try {
  const home = join(tempDir("wile-bench-issue-"), "wile");
  const timesFile = join(env.tmp, "time.txt");
  // First run registers the account; not measured.
  const warm = await timedRun(issueArgs(env, ["warmup.bench.example"]), home, timesFile);
  if (warm.code !== 0) throw new Error(`warm-up issuance exited ${warm.code}:\n${warm.stderr}`);
  const tag = Date.now().toString(36);
  for (let i = 0; i < ISSUE_RUNS; i++) {
    const name = `run${i}-${tag}.bench.example`;
    const r = await timedRun(issueArgs(env, [name]), home, timesFile);
    if (r.code !== 0) throw new Error(`issuance ${i + 1} (${name}) exited ${r.code}:\n${r.stderr}`);
    const cert = join(home, "certs", name, "cert.pem");
    if (!existsSync(cert)) throw new Error(`issuance ${i + 1} exited 0 but ${cert} is missing`);
    const sans = sanNames(cert);
    if (sans.length !== 1 || sans[0] !== name)
      throw new Error(`${cert} names ${sans.join(", ")}, not ${name}`);
    const [u, s, m] = readFileSync(timesFile, "utf8").trim().split(/\s+/).slice(-3).map(Number) as [
      number,
      number,
      number,
    ];
    runs.push({ name, wallS: r.wallS, userS: u, sysS: s, cpuS: u + s, rssMB: m / 1024 });
  }
  // 4. cron at scale (issue 13): 1000 copies of one certificate, none due, against node -e 0.
  const checked = await timedRun(["cron"], home, timesFile);
  if (checked.code !== 0) throw new Error(`wile cron exited ${checked.code}:\n${checked.stderr}`);
  scale = await cronCurve({
    template: home,
    name: "warmup.bench.example",
    sizes: [SCALE_CERTS],
    runs: quick ? 3 : 5,
    root: tempDir("wile-bench-scale-"),
    wile: (h, args) => ({ cmd: process.execPath, args: [cjs, ...args], env: cleanEnv(h) }),
    nodeE0: { cmd: process.execPath, args: ["-e", "0"], env: cleanEnv(home) },
    log: (s) => process.stderr.write(`bench: ${s}\n`),
  });
} catch (e) {
  failed = (e as Error).message;
} finally {
  await env.stop();
}

// ---------------------------------------------------------------------------------------------
// Report
const f = (x: number, d = 3) => x.toFixed(d);
const ok = (good: boolean) => (good ? "within" : "**over**");
const rows: string[][] = [];
const bundleKB = bundleBytes / 1024;
rows.push([
  "dist/wile.cjs size",
  `${f(bundleKB, 1)} KB`,
  "",
  "",
  `< ${BUDGET.bundleKB} KB`,
  ok(bundleKB < BUDGET.bundleKB),
]);
const diff = median(wileV) - median(nodeE);
rows.push([
  `node wile.cjs version (n=${STARTUP_RUNS})`,
  `${f(median(wileV), 1)} ms`,
  `${f(min(wileV), 1)} ms`,
  `${f(max(wileV), 1)} ms`,
  "",
  "",
]);
rows.push([
  `node -e 0 (n=${STARTUP_RUNS})`,
  `${f(median(nodeE), 1)} ms`,
  `${f(min(nodeE), 1)} ms`,
  `${f(max(nodeE), 1)} ms`,
  "",
  "",
]);
const diffCa = median(wileVx) - median(nodeEx);
for (const [label, d] of [
  ["startup overhead (median diff)", diff],
  ...(extraCa ? [["startup overhead with NODE_EXTRA_CA_CERTS (both)", diffCa] as const] : []),
] as const) {
  rows.push([label, `${f(d, 1)} ms`, "", "", `<= ${BUDGET.startupMs} ms`, ok(d <= BUDGET.startupMs)]);
}
if (runs.length > 0) {
  const w = runs.map((r) => r.wallS);
  const c = runs.map((r) => r.cpuS);
  const m = runs.map((r) => r.rssMB);
  rows.push([
    `issuance wall (n=${runs.length})`,
    `${f(median(w))} s`,
    `${f(min(w))} s`,
    `${f(max(w))} s`,
    `<= ${BUDGET.wallS} s`,
    ok(median(w) <= BUDGET.wallS),
  ]);
  rows.push([
    `issuance CPU user+sys (n=${runs.length})`,
    `${f(median(c), 2)} s`,
    `${f(min(c), 2)} s`,
    `${f(max(c), 2)} s`,
    `<= ${BUDGET.cpuS} s`,
    ok(median(c) <= BUDGET.cpuS),
  ]);
  rows.push([
    `issuance peak RSS (n=${runs.length})`,
    `${f(median(m), 1)} MB`,
    `${f(min(m), 1)} MB`,
    `${f(max(m), 1)} MB`,
    `<= node -e 0 + ${BUDGET.rssOverNodeMB} MB`,
    ok(median(m) <= median(baseRss) + BUDGET.rssOverNodeMB),
  ]);
}
rows.push([
  "for scale: node -e 0 CPU / RSS (n=5)",
  `${f(median(baseCpu), 2)} s / ${f(median(baseRss), 1)} MB`,
  "",
  "",
  "",
  "",
]);

const header = ["metric", "median", "min", "max", "budget", ""];
const lines = [header, header.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`);
console.log(`\nwile benchmark (${quick ? "quick" : "full"}; node ${process.version}; ${cjs})\n`);
console.log(lines.join("\n"));
if (scale.length > 0) console.log(`\ncron at scale (issue 13), none due:\n\n${curveRows(scale).join("\n")}`);
console.log(
  "\nCPU and RSS from GNU time (10 ms resolution); wall time from the parent; figures, not assertions.",
);

const out = join(repoRoot, ".tmp", "bench.json");
mkdirSync(join(repoRoot, ".tmp"), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      quick,
      bundleBytes,
      startup: { wileVersionMs: wileV, nodeE0Ms: nodeE, medianDiffMs: diff },
      startupExtraCa: extraCa ? { wileVersionMs: wileVx, nodeE0Ms: nodeEx, medianDiffMs: diffCa } : undefined,
      issuance: runs,
      baseline: { nodeE0CpuS: baseCpu, nodeE0RssMB: baseRss },
      cronScale: scale,
      budgets: BUDGET,
      failed: failed || undefined,
    },
    null,
    2,
  )}\n`,
);
console.log(`results: ${out}`);
if (failed) {
  console.error(`\nbench: FAILED: ${failed}`);
  process.exit(1);
}
