#!/usr/bin/env node
// npm run release: one upload-ready folder (default dist/release/) with wile.cjs, the standalone
// binaries for x64 and arm64 compressed as wile-linux-<arch>.xz and wile-linux-<arch>.gz,
// install.sh and SHA256SUMS covering all of them. Upload the folder's files as one release;
// install.sh and `wile upgrade` fetch from its URL, each the smallest form the host can decompress
// (xz where an xz decompressor is on PATH, else gzip), checked against SHA256SUMS before it is
// decompressed. The uncompressed binaries are not published: nothing fetches them (every Linux has
// gzip or busybox gunzip, and `wile upgrade` has zlib), and no release without the compressed
// forms was ever published. --keep-plain keeps them in the folder anyway (listed in SHA256SUMS).
//
// The bundle is built from src/ here (scripts/lib/bundle.mjs, as for dist/wile.cjs), so the committed
// dist/wile.cjs and the dist/wile-linux-* of build-sea.mjs are never touched. The Node binaries
// and the SEA build are scripts/lib/sea.mjs, as for build-sea.mjs
// (.tmp/sea-cache/<NODE_VERSION>/<arch>/node-stripped, fetched with `npm pack` when missing).
//
// Usage: node scripts/release.mjs [--out DIR] [--version V] [--arch x64|arm64 ...] [--fast] [--keep-plain]
//   --out      the folder (default dist/release; emptied first)
//   --version  the version string baked in (default: package.json's); tests use it for a "newer" build
//   --arch     only these standalone binaries (default: both)
//   --fast     xz -0 and gzip -1 instead of xz -9 and gzip -9: the same formats in seconds instead of
//              minutes, a third larger (the e2e tests); never for a release
//   --keep-plain  also keep the uncompressed wile-linux-<arch> in the folder
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
import { ARCHES, buildSea, compress, NODE_VERSION, runnerFor, run as runOrThrow } from "./lib/sea.mjs";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const { values } = parseArgs({
  options: {
    out: { type: "string" },
    version: { type: "string" },
    arch: { type: "string", multiple: true },
    fast: { type: "boolean", default: false },
    "keep-plain": { type: "boolean", default: false },
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

// 2. Standalone binaries: a SEA blob with code cache per arch (made by that arch's node, arm64's
// under qemu-user-static: strict, so a release never ships one without), then compressed (both
// arches and both forms at once).
if (arches.length > 0) {
  let bins = [];
  try {
    bins = buildSea(cjs, out, arches, log, { strict: true });
  } catch (e) {
    fail(e.message);
  }
  // Each binary that can run here (arm64 under qemu) says the same as wile.cjs, with nothing on
  // stderr: a code cache its V8 rejects would print a warning at every start.
  for (const arch of arches) {
    const runner = runnerFor(arch, join(out, `wile-linux-${arch}`));
    if (!runner) continue;
    const v = run("sh", ["-c", '"$@" version 2>&1', "sh", ...runner])
      .toString()
      .trim();
    if (v !== said) fail(`wile-linux-${arch} version says "${v}", wile.cjs says "${said}"`);
  }
  const t1 = Date.now();
  try {
    await Promise.all(bins.map((b) => compress(b, { fast: values.fast })));
  } catch (e) {
    fail(e.message);
  }
  log(
    `compressed ${bins.length} binaries in ${((Date.now() - t1) / 1000).toFixed(1)} s${values.fast ? " (--fast)" : ""}`,
  );
  if (!values["keep-plain"]) for (const b of bins) rmSync(b);
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
