/**
 * `npm run bench -- --batch-only [--batch N] [--batch-parallel N] [--cjs FILE]`: the batch case of
 * the full run (bench/batch.ts) alone, on its own TestEnv; prints the report and writes
 * .tmp/bench-batch.json.
 */
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startTestEnv } from "../test/helpers/testenv";
import { repoRoot, tempDir } from "../test/helpers/wile";
import { batchCase, batchReport } from "./batch";

const { values } = parseArgs({
  options: {
    "batch-only": { type: "boolean" },
    cjs: { type: "string" },
    batch: { type: "string", default: "1000" },
    "batch-parallel": { type: "string", default: "8" },
  },
});
const root = tempDir("wile-bench-batch-");
const cjs = join(root, "wile.cjs");
cpSync(resolve(values.cjs ?? join(repoRoot, "dist", "wile.cjs")), cjs);
const cleanEnv = (home: string): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: root,
  LANG: "C.UTF-8",
  NO_COLOR: "1",
  WILE_HOME: home,
});
const log = (s: string) => process.stderr.write(`bench: ${new Date().toISOString().slice(11, 19)} ${s}\n`);
const env = await startTestEnv({ env: { PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" } });
try {
  const b = await batchCase({
    env,
    root,
    n: Number(values.batch),
    parallel: Number(values["batch-parallel"]),
    wileCmd: (home, args) => ({ cmd: process.execPath, args: [cjs, ...args], env: cleanEnv(home) }),
    nodeCmd: { cmd: process.execPath, args: ["-e", "0"], env: cleanEnv(root) },
    log,
  });
  console.log(`\nnode ${process.version}\n\n${batchReport(b)}\n`);
  mkdirSync(join(repoRoot, ".tmp"), { recursive: true });
  const out = join(repoRoot, ".tmp", "bench-batch.json");
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, batch: b }, null, 2)}\n`,
  );
  console.log(`results: ${out}`);
} finally {
  await env.stop();
}
