#!/usr/bin/env node
// Builds standalone binaries dist/wile-linux-x64 and dist/wile-linux-arm64 as Node single-executable
// applications (SEA) from dist/wile.cjs, then writes dist/SHA256SUMS.
//
// How: scripts/lib/sea.mjs (Node from the npm packages node-linux-<arch> at a pinned version,
// stripped; a SEA blob with code cache per arch, arm64's made under qemu-user-static). These are
// the plain binaries the tests run; a release (scripts/release.mjs) publishes them compressed.
//
// Usage: node scripts/build-sea.mjs [--input FILE] [--arch x64|arm64 ...] [--no-check]
//   --input   bundle to embed instead of dist/wile.cjs (for local checks before the CLI exists)
//   --arch    build only these architectures (default: both)
//   --no-check  skip running `dist/wile-linux-x64 --version` afterwards
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ARCHES, buildSea, NODE_VERSION, runnerFor, run as runOrThrow } from "./lib/sea.mjs";

export { NODE_VERSION };

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const dist = join(root, "dist");

const { values } = parseArgs({
  options: {
    input: { type: "string" },
    arch: { type: "string", multiple: true },
    "no-check": { type: "boolean", default: false },
  },
});
const input = resolve(values.input ?? join(dist, "wile.cjs"));
const arches = values.arch ?? ARCHES;
for (const a of arches) if (!ARCHES.includes(a)) fail(`unknown --arch ${a} (x64 or arm64)`);

function fail(msg) {
  console.error(`build-sea: ${msg}`);
  process.exit(1);
}

function log(msg) {
  console.error(`build-sea: ${msg}`);
}

function run(cmd, args, opts) {
  try {
    return runOrThrow(cmd, args, opts);
  } catch (e) {
    fail(e.message);
  }
}

if (!existsSync(input)) fail(`${relative(root, input)} is missing: run npm run build first`);

const t0 = Date.now();
let outs;
try {
  outs = buildSea(input, dist, arches, log);
} catch (e) {
  fail(e.message);
}
for (const out of outs) log(`wrote ${relative(root, out)} (${(statSync(out).size / 1048576).toFixed(1)} MB)`);
log(`from ${relative(root, input)} (node ${NODE_VERSION})`);

if (!values["no-check"] && arches.includes("x64") && process.arch === "x64") {
  const v = run(join(dist, "wile-linux-x64"), ["--version"]).toString().trim();
  log(`dist/wile-linux-x64 --version: ${v}`);
}

if (!values["no-check"] && arches.includes("arm64") && process.arch !== "arm64") {
  const qemu = runnerFor("arm64", join(dist, "wile-linux-arm64"));
  if (qemu) {
    // stderr too: a code cache the arm64 V8 rejects would print a warning there.
    const [cmd, ...args] = qemu;
    const v = run("sh", ["-c", '"$@" --version 2>&1', "sh", cmd, ...args])
      .toString()
      .trim();
    log(`dist/wile-linux-arm64 --version under qemu: ${v}`);
  } else {
    log(
      "not checking dist/wile-linux-arm64: needs qemu-user-static, libc6-arm64-cross, libstdc++6-arm64-cross, libatomic1-arm64-cross",
    );
  }
}

// SHA256SUMS for whatever exists, in sha256sum's format ("<hex>  <name>").
const names = ["wile.cjs", "wile-linux-x64", "wile-linux-arm64"].filter((n) => existsSync(join(dist, n)));
const sums = names.map(
  (n) =>
    `${createHash("sha256")
      .update(readFileSync(join(dist, n)))
      .digest("hex")}  ${n}\n`,
);
writeFileSync(join(dist, "SHA256SUMS"), sums.join(""));
log(`wrote dist/SHA256SUMS (${names.join(", ")}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
