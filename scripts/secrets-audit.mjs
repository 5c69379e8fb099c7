#!/usr/bin/env node
// The secrets audit of an e2e run (issue 10 part 7): reads what test/helpers/secrets-audit.ts
// recorded in WILE_TEST_AUDIT_DIR (every runWile's argv, stdout and stderr; every scan of the homes,
// deploy targets and temp dirs), scans the outputs again with every secret the whole run handed to
// wile, prints the figures and exits 1 with the list of leaks (test file, where, which secret, why).
// Secret values are never printed. A directory without recorded runs fails too: the hooks did not run.
//
// Usage: node scripts/secrets-audit.mjs [--allow-empty] [DIR]   (default: $WILE_TEST_AUDIT_DIR)
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { register } from "tsx/esm/api";

register();
const { findKeyMaterial, findSecrets, secretsFromArgv, uniqueSecrets } = await import(
  "../test/helpers/secret-scan.ts"
);

const cli = process.argv.slice(2);
const allowEmpty = cli.includes("--allow-empty");
const dir = cli.find((a) => !a.startsWith("--")) ?? process.env.WILE_TEST_AUDIT_DIR;
if (!dir || !existsSync(dir)) {
  console.error("usage: node scripts/secrets-audit.mjs DIR (the WILE_TEST_AUDIT_DIR of an e2e run)");
  process.exit(2);
}

function lines(prefix) {
  const out = [];
  for (const f of readdirSync(dir)
    .filter((n) => n.startsWith(prefix) && n.endsWith(".jsonl"))
    .sort()) {
    for (const l of readFileSync(join(dir, f), "utf8").split("\n")) if (l) out.push(JSON.parse(l));
  }
  return out;
}

const runs = lines("runs-");
const scans = lines("files-");
const secrets = uniqueSecrets([
  ...runs.flatMap((r) => secretsFromArgv(r.argv)),
  ...scans.flatMap((s) => s.learned),
]);
const leaks = [];
let outputLines = 0;

/** argv for a report, secret values masked. */
function shown(argv) {
  const values = new Set(secretsFromArgv(argv).map((s) => s.value));
  return argv
    .map((a) => (values.has(a) ? "[secret]" : [...values].reduce((t, v) => t.split(v).join("[secret]"), a)))
    .join(" ");
}

runs.forEach((r, i) => {
  for (const stream of ["stdout", "stderr"]) {
    const text = r[stream] ?? "";
    outputLines += text === "" ? 0 : text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    const found = [...findKeyMaterial(text), ...findSecrets(Buffer.from(text), secrets).map((s) => s.kind)];
    for (const what of found) {
      leaks.push({
        test: r.test,
        where: `${stream} of run ${i + 1} (wile ${shown(r.argv)})`,
        what,
        why: "printed",
      });
    }
  }
});
for (const s of scans)
  for (const l of s.leaks) leaks.push({ test: s.test, where: l.file, what: l.what, why: l.why });

const sum = (f) => scans.reduce((n, s) => n + f(s), 0);
const keyFiles = new Set(scans.flatMap((s) => s.keyFiles));
const tests = new Set(runs.map((r) => r.test));
console.log(
  `secrets audit: test-files=${tests.size} runs=${runs.length} output-lines=${outputLines} ` +
    `log-lines=${sum((s) => s.logLines)} files-scanned=${sum((s) => s.files)} ` +
    `(${(sum((s) => s.bytes) / 1048576).toFixed(1)} MiB) key-files-mode-checked=${keyFiles.size} ` +
    `secrets-known=${secrets.length} scan-ms=${Math.round(sum((s) => s.ms ?? 0))} leaks=${leaks.length}`,
);
if (runs.length === 0 && !allowEmpty) {
  console.error(
    `secrets audit: no runs recorded in ${dir}: were the e2e tests run with WILE_TEST_AUDIT_DIR?`,
  );
  process.exit(1);
}
if (leaks.length > 0) {
  for (const l of leaks) console.error(`LEAK ${l.test}: ${l.what} in ${l.where}: ${l.why}`);
  console.error(`secrets audit: ${leaks.length} leak(s) (records in ${dir})`);
  process.exit(1);
}
