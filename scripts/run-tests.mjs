#!/usr/bin/env node
// Runs node:test (through tsx) over test/<suite>/**/*.test.ts. Node 20's --test takes no globs, so
// the files are found here. Usage: node scripts/run-tests.mjs unit|e2e [file filter substring...]
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const [suite, ...filters] = process.argv.slice(2);
if (suite !== "unit" && suite !== "e2e") {
  console.error("usage: node scripts/run-tests.mjs unit|e2e [filter...]");
  process.exit(2);
}

function find(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...find(p));
    else if (e.isFile() && e.name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const files = find(join(root, "test", suite))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(
    `no test files under test/${suite}${filters.length ? ` matching ${filters.join(", ")}` : ""}`,
  );
  process.exit(1);
}

const args = ["--import", "tsx", "--test", "--test-reporter=spec"];
// e2e files each start their own Pebble/nginx; one file at a time keeps timings and logs readable.
if (suite === "e2e") args.push("--test-concurrency=1", "--test-timeout=300000");
else args.push("--test-timeout=60000");
const child = spawn(process.execPath, [...args, ...files], { cwd: root, stdio: "inherit" });
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
