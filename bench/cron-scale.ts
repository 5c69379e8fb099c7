/**
 * The cron-at-scale case of issue 13, for bench/full.ts (100, 1000 and 10 000 certificates) and
 * bench/quick.ts (1000): `wile cron` over a home of n certificates, none due, interleaved with
 * `node -e 0` in the same rounds. The homes are made without the CA and untimed
 * (test/helpers/clone-home.ts: one certificate Pebble issued, written again under n names).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cloneHome } from "../test/helpers/clone-home";
import { type Cmd, median, type Timed, timed } from "./lib";

export interface CurvePoint {
  certs: number;
  wile: Timed[];
  node: Timed[];
  /** The `before` bundle's runs, when one was given (same home, same rounds). */
  before: Timed[];
  /** Median of the per-round ratios of wall times, wile / node -e 0. */
  ratio: number;
  /** 1-minute load average before each round. */
  load: string[];
}

/**
 * For each size n: a home of n copies of `name` from `template` (a home where `wile cron` has run
 * once), two untimed `wile cron` runs (the first builds the index; the files are younger than the
 * index trusts then, so the second is the one that fills it: see src/store/cron-index.ts), then
 * `runs` rounds of one `wile cron` and one `node -e 0`. Every timed run must exit 0 and print
 * nothing, and a last `wile cron --json` must say that all n were checked and none renewed or failed.
 */
export async function cronCurve(opts: {
  template: string;
  name: string;
  sizes: number[];
  runs: number;
  root: string;
  wile: (home: string, args: string[]) => Cmd;
  /** Another build to measure in the same rounds (bench/full.ts --before-cjs), e.g. main's. */
  before?: (home: string, args: string[]) => Cmd;
  nodeE0: Cmd;
  log: (s: string) => void;
}): Promise<CurvePoint[]> {
  const points: CurvePoint[] = [];
  for (const n of opts.sizes) {
    const home = join(opts.root, `wile-cron-${n}`);
    const t0 = Date.now();
    cloneHome(opts.template, opts.name, n, home);
    opts.log(
      `cron at scale: ${n} certificates written in ${((Date.now() - t0) / 1000).toFixed(1)} s (untimed)`,
    );
    const cron = opts.wile(home, ["cron"]);
    const old = opts.before?.(home, ["cron"]);
    const written = Date.now();
    for (let i = 0; i < 2; i++) {
      // The second run begins 2 s after the files were written: the index trusts them then on any file system.
      if (i === 1) await new Promise((r) => setTimeout(r, Math.max(0, written + 2100 - Date.now())));
      if (old) await timed(old, 1_800_000);
      const warm = await timed(cron, 1_800_000);
      if (warm.code !== 0)
        throw new Error(`wile cron over ${n} certificates exited ${warm.code}: ${warm.stderr}`);
    }
    await timed(opts.nodeE0);
    const point: CurvePoint = { certs: n, wile: [], node: [], before: [], ratio: Number.NaN, load: [] };
    const ratios: number[] = [];
    for (let i = 0; i < opts.runs; i++) {
      point.load.push(readFileSync("/proc/loadavg", "utf8").split(" ")[0] as string);
      const w = await timed(cron, 600_000);
      if (w.code !== 0 || w.stdout || w.stderr) {
        throw new Error(`wile cron over ${n} certificates exited ${w.code}: ${w.stdout}${w.stderr}`);
      }
      if (old) {
        const b = await timed(old, 1_800_000);
        if (b.code !== 0) throw new Error(`the before build's cron over ${n} certificates exited ${b.code}`);
        point.before.push(b);
      }
      const e = await timed(opts.nodeE0);
      point.wile.push(w);
      point.node.push(e);
      ratios.push(w.wallS / e.wallS);
    }
    point.ratio = median(ratios);
    const j = opts.wile(home, ["cron", "--json"]);
    const r = spawnSync(j.cmd, j.args, { env: j.env, encoding: "utf8", maxBuffer: 1 << 30 });
    const summary = (JSON.parse(r.stdout) as { summary: string }).summary;
    if (!summary.startsWith(`${n} checked, 0 renewed, 0 failed`)) {
      throw new Error(`wile cron --json over ${n} certificates: ${summary}`);
    }
    opts.log(
      `cron at scale: ${n} certificates, wile ${median(point.wile.map((x) => x.wallS)).toFixed(3)} s, ${point.ratio.toFixed(2)}x node -e 0`,
    );
    points.push(point);
  }
  return points;
}

/** Markdown rows: certificates, wile wall median (min-max), CPU, RSS, node -e 0, ratio, load. */
export function curveRows(points: CurvePoint[]): string[] {
  const f = (x: number, d = 3) => x.toFixed(d);
  const rows = [
    "| certificates (none due) | wile cron wall s, median (min–max) | CPU user+sys s | peak RSS MB | node -e 0 wall s | ratio wile / node -e 0 | s per 1000 certificates over node -e 0 | before: wall s, CPU s | load (1 min) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const p of points) {
    const w = p.wile.map((x) => x.wallS);
    const e = median(p.node.map((x) => x.wallS));
    const before = p.before.length
      ? `${f(median(p.before.map((x) => x.wallS)))}, ${f(median(p.before.map((x) => x.cpuS)), 2)}`
      : "-";
    rows.push(
      `| ${p.certs} | ${f(median(w))} (${f(Math.min(...w))}–${f(Math.max(...w))}) | ${f(median(p.wile.map((x) => x.cpuS)), 2)} | ${f(median(p.wile.map((x) => x.rssMB)), 1)} | ${f(e)} | ${f(p.ratio, 2)} | ${f(((median(w) - e) * 1000) / p.certs)} | ${before} | ${p.load.join(", ")} |`,
    );
  }
  return rows;
}
