#!/usr/bin/env node
// npm run test:repeat: runs the e2e suite N times the way CI does (scripts/run-tests.mjs e2e: same
// --test-concurrency, timeouts and secrets audit), keeps every run's output, and reports each test
// that did not pass every time (file, name, passes/runs) and the wall time of each run. Exit 1 when
// a test flaked or a run failed. Not part of scripts/test.sh / .ci/run: it takes N times as long.
//
// Usage: npm run test:repeat [-- --times N] [-- file filters...]   (or WILE_TEST_REPEAT=N; default 3)
// Output: .tmp/test-repeat/<UTC>/run-<i>.log (spec), run-<i>.tap, run-<i>.jsonl (one line per test).
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const cli = process.argv.slice(2);
let times = Number(process.env.WILE_TEST_REPEAT ?? 3);
const filters = [];
for (let i = 0; i < cli.length; i++) {
  if (cli[i] === "--times") times = Number(cli[++i]);
  else if (cli[i]?.startsWith("--times=")) times = Number(cli[i].slice(8));
  else filters.push(cli[i]);
}
if (!Number.isInteger(times) || times < 1) {
  console.error("usage: node scripts/test-repeat.mjs [--times N] [file filter...] (N >= 1)");
  process.exit(2);
}
if (!existsSync(join(root, "dist", "wile.cjs"))) {
  console.error("test-repeat: dist/wile.cjs is missing: run npm run build first");
  process.exit(2);
}

const out = join(root, ".tmp", "test-repeat", new Date().toISOString().replace(/[-:]|\.\d+/g, ""));
mkdirSync(out, { recursive: true });
const rel = (p) => relative(root, p);
console.log(
  `test-repeat: e2e suite ${times} times${filters.length ? ` (${filters.join(", ")})` : ""}; output in ${rel(out)}`,
);

function runOnce(i) {
  const log = createWriteStream(join(out, `run-${i}.log`));
  const env = {
    ...process.env,
    CI: process.env.CI ?? "true",
    WILE_TEST_TAP: join(out, `run-${i}.tap`),
    WILE_TEST_RESULTS: join(out, `run-${i}.jsonl`),
  };
  delete env.WILE_TEST_AUDIT_DIR; // each run audits itself (run-tests.mjs)
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(root, "scripts", "run-tests.mjs"), "e2e", ...filters], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.on("close", (code) => {
      log.end();
      done({ code: code ?? 1, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/** file + name -> { passes, runs } over every run. */
const tally = new Map();
const runs = [];
for (let i = 1; i <= times; i++) {
  const r = await runOnce(i);
  const file = join(out, `run-${i}.jsonl`);
  const results = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  let pass = 0;
  let fail = 0;
  for (const t of results) {
    if (t.skip || t.todo || t.suite) continue;
    const key = `${t.file ? rel(t.file) : "?"}\0${t.name}`;
    const e = tally.get(key) ?? { passes: 0, runs: 0 };
    e.runs++;
    if (t.ok) e.passes++;
    tally.set(key, e);
    t.ok ? pass++ : fail++;
  }
  runs.push({ ...r, pass, fail });
  console.log(`run ${i}/${times}: exit ${r.code}, ${r.seconds.toFixed(1)} s, ${pass} passed, ${fail} failed`);
}

// A test missing from a run (its file crashed) did not pass that time either.
const flaky = [...tally.entries()].filter(([, e]) => e.passes < times);
const walls = runs.map((r) => r.seconds.toFixed(1));
console.log(
  `test-repeat: runs=${times} tests=${tally.size} flaky=${flaky.length} failed-runs=${runs.filter((r) => r.code !== 0).length} wall-s=${walls.join(",")}`,
);
for (const [key, e] of flaky) {
  const [file, name] = key.split("\0");
  console.log(`  not always passing: ${file}: ${name}: ${e.passes}/${times}`);
}
process.exit(flaky.length > 0 || runs.some((r) => r.code !== 0) ? 1 : 0);
