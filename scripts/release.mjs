#!/usr/bin/env node
// npm run release: one upload-ready folder (default dist/release/) with wile.cjs, the standalone
// binaries wile-linux-x64 and wile-linux-arm64, install.sh and SHA256SUMS covering all of them.
// Upload the folder's files as one release; install.sh and `wile upgrade` fetch from its URL.
//
// The bundle is built from src/ here (same esbuild settings as scripts/build.mjs), so the committed
// dist/wile.cjs and the dist/wile-linux-* of build-sea.mjs are never touched. The Node binaries
// come from the same cache as build-sea.mjs (.tmp/sea-cache/<NODE_VERSION>/<arch>/node, fetched
// with `npm pack` when missing), at the NODE_VERSION pinned there.
//
// Usage: node scripts/release.mjs [--out DIR] [--version V] [--arch x64|arm64 ...]
//   --out      the folder (default dist/release; emptied first)
//   --version  the version string baked in (default: package.json's); tests use it for a "newer" build
//   --arch     only these standalone binaries (default: both)
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const ARCHES = ["x64", "arm64"];
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const { values } = parseArgs({
  options: {
    out: { type: "string" },
    version: { type: "string" },
    arch: { type: "string", multiple: true },
  },
});
const out = resolve(values.out ?? join(root, "dist", "release"));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const version = values.version ?? pkg.version;
const arches = values.arch ?? ARCHES;
for (const a of arches) if (!ARCHES.includes(a)) fail(`unknown --arch ${a} (x64 or arm64)`);
const seaSource = readFileSync(join(root, "scripts", "build-sea.mjs"), "utf8");
const NODE_VERSION =
  /NODE_VERSION = "([^"]+)"/.exec(seaSource)?.[1] ?? fail("no NODE_VERSION in build-sea.mjs");
const cache = join(root, ".tmp", "sea-cache");

function fail(msg) {
  console.error(`release: ${msg}`);
  process.exit(1);
}
function log(msg) {
  console.error(`release: ${msg}`);
}
function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20, ...opts });
  } catch (e) {
    fail(
      `${cmd} ${args.join(" ")} failed (exit ${e.status}):\n${e.stderr?.toString() ?? ""}${e.stdout?.toString() ?? ""}`,
    );
  }
}
const sha256 = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** The cached Node binary for arch (build-sea.mjs's cache), fetched with `npm pack` when missing. */
function nodeBinary(arch) {
  const dir = join(cache, NODE_VERSION, arch);
  const bin = join(dir, "node");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const spec = `node-linux-${arch}@${NODE_VERSION}`;
  log(`fetching ${spec} with npm pack (about 57 MB)`);
  const said = run("npm", ["pack", spec, "--pack-destination", dir, "--silent"], { cwd: dir })
    .toString()
    .trim();
  const tgz = join(dir, said.split("\n").pop() ?? "");
  if (!existsSync(tgz)) fail(`npm pack ${spec} did not produce a tarball (said: ${said})`);
  run("tar", ["-xzf", tgz, "-C", dir, "package/bin/node"]);
  renameSync(join(dir, "package", "bin", "node"), bin);
  rmSync(join(dir, "package"), { recursive: true, force: true });
  rmSync(tgz, { force: true });
  chmodSync(bin, 0o755);
  return bin;
}

const t0 = Date.now();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// 1. wile.cjs (scripts/build.mjs's settings, another outfile and maybe another version).
const cjs = join(out, "wile.cjs");
await build({
  entryPoints: [join(root, "src", "cli.ts")],
  outfile: cjs,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: "none",
  banner: { js: "#!/usr/bin/env node" },
  define: { __WILE_VERSION__: JSON.stringify(version) },
  logLevel: "warning",
});
chmodSync(cjs, 0o755);
const said = run(process.execPath, [cjs, "version"]).toString().trim();
if (said !== `wile ${version}`) fail(`${cjs} version says "${said}", expected "wile ${version}"`);
const committed = join(root, "dist", "wile.cjs");
if (values.version === undefined && existsSync(committed) && sha256(committed) !== sha256(cjs)) {
  log("note: dist/wile.cjs differs from this build (uncommitted src/ changes, or run npm run build)");
}

// 2. Standalone binaries: one SEA blob (made by the pinned x64 node), injected per arch.
if (arches.length > 0) {
  const maker = nodeBinary("x64");
  const work = join(cache, `release-work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const blob = join(work, "sea-prep.blob");
  const config = join(work, "sea-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      main: cjs,
      output: blob,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: false,
    }),
  );
  run(maker, ["--experimental-sea-config", config], { cwd: work });
  const postject = join(root, "node_modules", ".bin", "postject");
  if (!existsSync(postject)) fail("node_modules/.bin/postject is missing: run npm ci");
  for (const arch of arches) {
    const dest = join(out, `wile-linux-${arch}`);
    copyFileSync(nodeBinary(arch), `${dest}.tmp`);
    chmodSync(`${dest}.tmp`, 0o755);
    run(postject, [`${dest}.tmp`, "NODE_SEA_BLOB", blob, "--sentinel-fuse", FUSE]);
    renameSync(`${dest}.tmp`, dest);
  }
  rmSync(work, { recursive: true, force: true });
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
