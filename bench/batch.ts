/**
 * Batch issuance (issue 13): `wile issue --batch FILE --json` over N fresh names (default 1000),
 * one certificate per line, in a fresh home (the account is registered by the run), against the
 * TestEnv's Pebble (PEBBLE_VA_NOSLEEP=1, PEBBLE_AUTHZREUSE=0: every order validates over http-01
 * through nginx, with wile's preflight on). Measured: wall time (harness), CPU user+sys and peak
 * RSS of wile (GNU time), the CPU Pebble, pebble-challtestsrv and nginx spent meanwhile (/proc of
 * the TestEnv's processes: is the CA the bottleneck?), `node -e 0` in the same run as the
 * reference, and the load average. Every certificate is checked afterwards: a JSON line "issued"
 * for each line, and cert.pem names its line's name, is valid now, and verifies through chain.pem
 * up to Pebble's root. Then the same file again (the daily rerun): every line must be skipped.
 *
 * Part of `npm run bench` (bench/full.ts, case 6); alone: `npm run bench -- --batch-only [--batch N]
 * [--batch-parallel N]` (writes .tmp/bench-batch.json).
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { splitPemChain } from "../src/crypto/pem";
import type { TestEnv } from "../test/helpers/testenv";
import { type Cmd, median, type Timed, timed } from "./lib";

export interface BatchFigures {
  certificates: number;
  parallel: number;
  wallS: number;
  cpuS: number;
  rssMB: number;
  certsPerS: number;
  verified: number;
  /** CPU seconds of the TestEnv's processes during the batch run. */
  infraCpuS: Record<string, number>;
  /** node -e 0, same run: median of 5. */
  nodeE0: { wallS: number; cpuS: number; rssMB: number };
  /** The same file again: every line skipped. */
  rerun: { wallS: number; cpuS: number; rssMB: number; skipped: number };
  load: { before: string; after: string };
  how: string;
}

const TICKS_PER_S = 100;

/** CPU ticks (user+sys) of every process below this one, by command name (nginx workers under their master). */
function descendantCpu(): Map<string, number> {
  const procs: Array<{ pid: number; ppid: number; comm: string; ticks: number }> = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const f = stat
        .slice(close + 2)
        .split(" ")
        .map(Number);
      // Fields after the comm: state(0) ppid(1) ... utime(11) stime(12).
      procs.push({
        pid: Number(e),
        ppid: f[1] as number,
        comm,
        ticks: (f[11] as number) + (f[12] as number),
      });
    } catch {}
  }
  const mine = new Set([process.pid]);
  const out = new Map<string, number>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (mine.has(p.ppid) && !mine.has(p.pid)) {
        mine.add(p.pid);
        grew = true;
        if (/^(pebble|nginx)/.test(p.comm)) {
          const name = p.comm.startsWith("pebble-") ? "pebble-challtestsrv" : p.comm.replace(/:.*/, "");
          out.set(name, (out.get(name) ?? 0) + p.ticks);
        }
      }
    }
  }
  return out;
}

const loadavg = () => readFileSync("/proc/loadavg", "utf8").trim();

/** Runs the case: `wileCmd(home, args)` runs the bundle under test with a clean environment. */
export async function batchCase(o: {
  env: TestEnv;
  root: string;
  n: number;
  parallel: number;
  wileCmd: (home: string, args: string[]) => Cmd;
  nodeCmd: Cmd;
  log: (s: string) => void;
}): Promise<BatchFigures> {
  const { env } = o;
  const home = join(o.root, "wile-batch");
  mkdirSync(home, { recursive: true });
  const tag = Date.now().toString(36);
  const names = Array.from({ length: o.n }, (_, i) => `b${i}-${tag}.batch.bench.example`);
  const file = join(o.root, "batch.txt");
  writeFileSync(
    file,
    `# ${o.n} fresh names, one certificate each\n${names.map((n) => `${n} --resolve ${env.resolveArg(n)}`).join("\n")}\n`,
  );
  const args = [
    "issue",
    "--batch",
    file,
    "-w",
    env.webroot,
    "--server",
    env.directoryUrl,
    "--ca-bundle",
    env.caBundle,
    "--parallel",
    String(o.parallel),
    "--json",
  ];
  const nodeRuns: Timed[] = [];
  for (let i = 0; i < 5; i++) nodeRuns.push(await timed(o.nodeCmd));
  const before = loadavg();
  const cpu0 = descendantCpu();
  o.log(`batch: ${o.n} lines, --parallel ${o.parallel}`);
  const r = await timed(o.wileCmd(home, args), 900_000);
  const cpu1 = descendantCpu();
  const after = loadavg();
  if (r.code !== 0) throw new Error(`wile issue --batch exited ${r.code}: ${r.stderr.slice(-3000)}`);
  const lines = r.stdout.trim().split("\n");
  const results = lines.slice(0, -1).map((l) => JSON.parse(l) as { name: string; status: string });
  const issued = new Set(results.filter((x) => x.status === "issued").map((x) => x.name));
  if (issued.size !== o.n)
    throw new Error(`wile issue --batch: ${issued.size} of ${o.n} issued: ${lines.at(-1)}`);

  // Every certificate, verified here too: its name, valid now, each link signed by the next, up to Pebble's root.
  const root = new X509Certificate(await env.pebbleRoot());
  const now = new Date();
  for (const n of names) {
    const dir = join(home, "certs", n);
    const leaf = new X509Certificate(readFileSync(join(dir, "cert.pem")));
    const chain = splitPemChain(readFileSync(join(dir, "chain.pem"), "utf8")).map(
      (p) => new X509Certificate(p),
    );
    const path = [leaf, ...chain];
    const ok =
      leaf.checkHost(n) === n &&
      new Date(leaf.validFrom) <= now &&
      now <= new Date(leaf.validTo) &&
      path.every((c, i) => c.verify((path[i + 1] ?? root).publicKey));
    if (!ok) throw new Error(`batch: the certificate of ${n} does not verify up to Pebble's root`);
  }
  o.log(`batch: ${o.n} certificates issued and verified in ${r.wallS.toFixed(1)} s`);

  const again = await timed(o.wileCmd(home, args), 900_000);
  const summary = JSON.parse(again.stdout.trim().split("\n").at(-1) ?? "{}") as { skipped?: number };
  if (again.code !== 0 || summary.skipped !== o.n)
    throw new Error(`wile issue --batch, second run: exit ${again.code}, ${JSON.stringify(summary)}`);
  const infraCpuS: Record<string, number> = {};
  for (const [k, v] of cpu1) infraCpuS[k] = (v - (cpu0.get(k) ?? 0)) / TICKS_PER_S;
  return {
    certificates: o.n,
    parallel: o.parallel,
    wallS: r.wallS,
    cpuS: r.cpuS,
    rssMB: r.rssMB,
    certsPerS: o.n / r.wallS,
    verified: o.n,
    infraCpuS,
    nodeE0: {
      wallS: median(nodeRuns.map((x) => x.wallS)),
      cpuS: median(nodeRuns.map((x) => x.cpuS)),
      rssMB: median(nodeRuns.map((x) => x.rssMB)),
    },
    rerun: { wallS: again.wallS, cpuS: again.cpuS, rssMB: again.rssMB, skipped: summary.skipped },
    load: { before, after },
    how: `wile issue --batch FILE -w WEBROOT --server URL --ca-bundle FILE --parallel ${o.parallel} --json; FILE: ${o.n} lines "NAME --resolve NAME:PORT:127.0.0.1"`,
  };
}

/** The figures as markdown: a table, and the targets of issue 13. */
export function batchReport(b: BatchFigures, withTargets = true): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const infra = Object.entries(b.infraCpuS)
    .map(([k, v]) => `${k} ${f(v)} s`)
    .join(", ");
  const wileCpuPerCert = (b.cpuS / b.certificates) * 1000;
  return [
    `| batch issuance (issue 13) | wall s | CPU user+sys s | peak RSS MB | certificates/s |`,
    "| --- | --- | --- | --- | --- |",
    `| node -e 0 (reference, median of 5) | ${f(b.nodeE0.wallS, 3)} | ${f(b.nodeE0.cpuS)} | ${f(b.nodeE0.rssMB, 1)} | |`,
    `| wile issue --batch, ${b.certificates} fresh names, --parallel ${b.parallel} | ${f(b.wallS)} | ${f(b.cpuS)} | ${f(b.rssMB, 1)} | ${f(b.certsPerS, 1)} |`,
    `| the same file again (all ${b.rerun.skipped} skipped: not due) | ${f(b.rerun.wallS)} | ${f(b.rerun.cpuS)} | ${f(b.rerun.rssMB, 1)} | |`,
    "",
    `wile: ${f(wileCpuPerCert, 1)} ms CPU per certificate; peak RSS ${f(b.rssMB / b.nodeE0.rssMB, 2)}x node -e 0's. During the batch: ${infra}. Load average before: ${b.load.before}; after: ${b.load.after}.`,
    ...(withTargets
      ? [
          "",
          "| target | measured | |",
          "| --- | --- | --- |",
          ...batchTargets(b).map((t) => `| ${t.target} | ${t.value} | ${t.met ? "met" : "**missed**"} |`),
        ]
      : []),
  ].join("\n");
}

export function batchTargets(b: BatchFigures): { target: string; value: string; met: boolean }[] {
  return [
    {
      target: `${b.certificates} fresh certificates in one batch: wall <= 90 s`,
      value: `${b.wallS.toFixed(1)} s`,
      met: b.wallS <= 90,
    },
    { target: "... peak RSS <= 150 MB", value: `${b.rssMB.toFixed(1)} MB`, met: b.rssMB <= 150 },
    {
      target: "... every one verified",
      value: `${b.verified} of ${b.certificates}`,
      met: b.verified === b.certificates,
    },
  ];
}
