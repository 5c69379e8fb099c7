#!/usr/bin/env node
// npm run release: one upload-ready folder (default dist/release/) with wile.cjs, the standalone
// binaries wile-linux-x64 and wile-linux-arm64, install.sh and SHA256SUMS covering all of them.
// Upload the folder's files as one release; install.sh and `wile upgrade` fetch from its URL.
//
// The bundle is built from src/ here (scripts/lib/bundle.mjs, as for dist/wile.cjs), so the committed
// dist/wile.cjs and the dist/wile-linux-* of build-sea.mjs are never touched. The Node binaries
// and the SEA build are scripts/lib/sea.mjs, as for build-sea.mjs (.tmp/sea-cache/<NODE_VERSION>/<arch>/node,
// fetched with `npm pack` when missing).
//
// Usage: node scripts/release.mjs [--out DIR] [--version V] [--arch x64|arm64 ...]
//   --out      the folder (default dist/release; emptied first)
//   --version  the version string baked in (default: package.json's); tests use it for a "newer" build
//   --arch     only these standalone binaries (default: both)
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { bundle, packageVersion } from "./lib/bundle.mjs";
import { ARCHES, buildSea, NODE_VERSION, run as runOrThrow } from "./lib/sea.mjs";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const { values } = parseArgs({
  options: {
    out: { type: "string" },
    version: { type: "string" },
    arch: { type: "string", multiple: true },
  },
});
const out = resolve(values.out ?? join(root, "dist", "release"));
const version = values.version ?? packageVersion();
const arches = values.arch ?? ARCHES;
for (const a of arches) if (!ARCHES.includes(a)) fail(`unknown --arch ${a} (x64 or arm64)`);

function fail(msg) {
  console.error(`release: ${msg}`);
  process.exit(1);
}
function log(msg) {
  console.error(`release: ${msg}`);
}
function run(cmd, args, opts) {
  try {
    return runOrThrow(cmd, args, opts);
  } catch (e) {
    fail(e.message);
  }
}
const sha256 = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");

const t0 = Date.now();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// 1. wile.cjs (scripts/build.mjs's settings, another outfile and maybe another version).
const cjs = join(out, "wile.cjs");
await bundle(cjs, version);

const said = run(process.execPath, [cjs, "version"]).toString().trim();
if (said !== `wile ${version}`) fail(`${cjs} version says "${said}", expected "wile ${version}"`);
const committed = join(root, "dist", "wile.cjs");
if (values.version === undefined && existsSync(committed) && sha256(committed) !== sha256(cjs)) {
  log("note: dist/wile.cjs differs from this build (uncommitted src/ changes, or run npm run build)");
}

// 2. Standalone binaries: one SEA blob (made by the pinned x64 node), injected per arch.
if (arches.length > 0) {
  try {
    buildSea(cjs, out, arches, log);
  } catch (e) {
    fail(e.message);
  }
  if (arches.includes("x64") && process.arch === "x64") {
    const v = run(join(out, "wile-linux-x64"), ["version"]).toString().trim();
    if (v !== said) fail(`wile-linux-x64 version says "${v}", wile.cjs says "${said}"`);
  }
}

// 3. install.sh and SHA256SUMS over everything.
copyFileSync(join(root, "install.sh"), join(out, "install.sh"));
chmodSync(join(out, "install.sh"), 0o755);
const names = readdirSync(out)
  .filter((n) => n !== "SHA256SUMS")
  .sort();
writeFileSync(join(out, "SHA256SUMS"), names.map((n) => `${sha256(join(out, n))}  ${n}\n`).join(""));
for (const n of [...names, "SHA256SUMS"]) {
  log(`${n}: ${statSync(join(out, n)).size} bytes`);
}
log(
  `${said} (node ${NODE_VERSION}) in ${((Date.now() - t0) / 1000).toFixed(1)} s: upload the files of ${out}`,
);
