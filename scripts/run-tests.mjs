#!/usr/bin/env node
// Runs node:test (through tsx) over test/<suite>/**/*.test.ts. Node 20's --test takes no globs, so
// the files are found here. Usage: node scripts/run-tests.mjs unit|e2e [file filter substring...]
//
// e2e runs are audited for leaked secrets (test/helpers/secrets-audit.ts): with WILE_TEST_AUDIT_DIR
// set, the records go there and the caller runs scripts/secrets-audit.mjs (scripts/test.sh does);
// without it they go to a fresh temp dir, audited here after the tests (and removed when clean).
// WILE_TEST_TAP=FILE also writes a TAP report there; WILE_TEST_RESULTS=FILE one JSON line per test
// (scripts/lib/results-reporter.mjs, read by scripts/test-repeat.mjs).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
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

const args = ["--import", "tsx", "--test", "--test-reporter=spec", "--test-reporter-destination=stdout"];
if (process.env.WILE_TEST_TAP) {
  args.push("--test-reporter=tap", `--test-reporter-destination=${process.env.WILE_TEST_TAP}`);
}
if (process.env.WILE_TEST_RESULTS) {
  args.push(
    `--test-reporter=${join(root, "scripts", "lib", "results-reporter.mjs")}`,
    `--test-reporter-destination=${process.env.WILE_TEST_RESULTS}`,
  );
}
// e2e files each start their own Pebble/nginx; one file at a time keeps timings and logs readable.
if (suite === "e2e") args.push("--test-concurrency=1", "--test-timeout=300000");
else args.push("--test-timeout=60000");
const ownAudit = suite === "e2e" && !process.env.WILE_TEST_AUDIT_DIR;
const env = { ...process.env };
if (ownAudit) env.WILE_TEST_AUDIT_DIR = mkdtempSync(join(tmpdir(), "wile-secrets-audit-"));
const child = spawn(process.execPath, [...args, ...files], { cwd: root, stdio: "inherit", env });
child.on("exit", (code, signal) => {
  let rc = code ?? (signal ? 1 : 0);
  if (ownAudit) {
    const audit = spawnSync(
      process.execPath,
      [join(root, "scripts", "secrets-audit.mjs"), "--allow-empty", env.WILE_TEST_AUDIT_DIR],
      {
        cwd: root,
        stdio: "inherit",
      },
    );
    if (audit.status === 0) rmSync(env.WILE_TEST_AUDIT_DIR, { recursive: true, force: true });
    else rc ||= 1;
  }
  process.exit(rc);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
