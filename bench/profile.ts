/**
 * `node --import tsx bench/profile.ts [--runs N] [--cjs FILE]`: where one wile issuance spends its
 * CPU. Starts the same local Pebble as bench/full.ts (PEBBLE_WFE_NONCEREJECT=0), registers the account
 * with a warm-up issuance, then runs `node --cpu-prof dist/wile.cjs issue` N times (fresh names) and
 * prints the top self-time entries summed over the runs, and self time by source (wile.cjs, node's
 * own JavaScript, GC, native/idle).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { issueArgs } from "../test/helpers/e2e";
import { startTestEnv } from "../test/helpers/testenv";
import { repoRoot, tempDir } from "../test/helpers/wile";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    cjs: { type: "string" },
    top: { type: "string", default: "20" },
  },
});
const cjs = resolve(values.cjs ?? join(repoRoot, "dist", "wile.cjs"));
const runs = Number(values.runs);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const env = await startTestEnv({ env: { PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" } });
const selfUs = new Map<string, number>();
const bySource = new Map<string, number>();
let totalUs = 0;
try {
  const root = tempDir("wile-bench-profile-");
  const home = join(root, "home");
  const profDir = join(root, "prof");
  mkdirSync(profDir);
  const childEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: root,
    LANG: "C.UTF-8",
    WILE_HOME: home,
  };
  const run = (name: string, prof: boolean) => {
    const args = [
      ...(prof ? ["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "100"] : []),
      cjs,
      ...issueArgs(env, [name]),
    ];
    const r = spawnSync(process.execPath, args, { env: childEnv, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`wile issue ${name} exited ${r.status}: ${r.stderr}`);
  };
  run(`warmup-${Date.now().toString(36)}.profile.example`, false);
  for (let i = 0; i < runs; i++) run(`p${i}-${Date.now().toString(36)}.profile.example`, true);
  for (const f of readdirSync(profDir)) {
    const p = JSON.parse(readFileSync(join(profDir, f), "utf8")) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const dt = p.timeDeltas[i] ?? 0;
      const cf = byId.get(id)?.callFrame;
      if (!cf) return;
      const file = cf.url.replace(/^file:\/\//, "").replace(repoRoot, ".");
      const key = `${cf.functionName || "(anonymous)"} ${file ? `${file}:${cf.lineNumber + 1}` : ""}`.trim();
      selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
      const src = cf.url.endsWith("wile.cjs")
        ? "wile.cjs (bundle: wile, jose, minimist)"
        : cf.url.startsWith("node:")
          ? "node's own JavaScript (node:*)"
          : cf.functionName === "(idle)"
            ? "(idle: waiting for the network)"
            : cf.functionName.startsWith("(")
              ? cf.functionName
              : `other: ${cf.url || "native"}`;
      bySource.set(src, (bySource.get(src) ?? 0) + dt);
      if (cf.functionName !== "(idle)") totalUs += dt;
    });
  }
} finally {
  await env.stop();
}
const ms = (us: number) => (us / 1000 / runs).toFixed(1);
console.log(`\nwile issue under --cpu-prof (${runs} runs; ms per run; busy = not idle: ${ms(totalUs)} ms)\n`);
console.log("| self time by source | ms/run |\n| --- | --- |");
for (const [k, v] of [...bySource].sort((a, b) => b[1] - a[1])) console.log(`| ${k} | ${ms(v)} |`);
console.log("\n| top self time | ms/run |\n| --- | --- |");
for (const [k, v] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`| ${k.replace(/\|/g, "\\|")} | ${ms(v)} |`);
}
