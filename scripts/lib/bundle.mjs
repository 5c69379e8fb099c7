// The one set of esbuild settings for wile.cjs, used by build.mjs (dist/wile.cjs) and release.mjs.
import { createHash } from "node:crypto";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { brotliCompressSync, constants } from "node:zlib";
import { build, transform } from "esbuild";

const root = new URL("../../", import.meta.url).pathname;

export const packageVersion = () => JSON.parse(readFileSync(`${root}package.json`, "utf8")).version;

// The program's first line when packed: the CommonJS wrapper that the loader calls. It is part of
// what the source map describes, so positions in the program are positions in the map.
const WRAPPER = "(function (exports, require, module, __filename, __dirname) {";

/**
 * Bundles src/ into `outfile`: one CommonJS file with a node shebang, runtime deps inlined, and the
 * source map `<outfile>.map` beside it (no sources inside) that turns -v stack traces back into
 * TypeScript names and positions (src/util/stack.ts); wile.cjs does not need it to run.
 *
 * `pack` (the default) writes the minified program brotli-compressed inside a small loader
 * (LOADER below): 391 KB of minified JavaScript, mostly messages and help, become about 150 KB,
 * within the 250 KB budget, and the loader keeps V8's compiled code in the home so that later runs
 * skip the compile. `pack: false` writes the program itself (as before; for a SEA main script).
 */
export async function bundle(outfile, version = packageVersion(), { pack = true } = {}) {
  const result = await build({
    entryPoints: [`${root}src/cli.ts`],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // Full minification parses faster and compresses better.
    minify: true,
    sourcemap: "external",
    sourcesContent: false,
    legalComments: "none",
    banner: { js: pack ? WRAPPER : "#!/usr/bin/env node" },
    footer: pack ? { js: "})" } : undefined,
    define: { __WILE_VERSION__: JSON.stringify(version) },
    logLevel: "warning",
    write: !pack,
    metafile: true,
  });
  // The loader compiles the program with vm.Script, which has no import(): a dynamic import left in
  // the output (a node: builtin, say; bundled modules become lazy parts of the bundle) would throw.
  for (const out of Object.values(result.metafile.outputs)) {
    const dynamic = out.imports.filter((i) => i.kind === "dynamic-import" && i.external);
    if (dynamic.length)
      throw new Error(`import() of ${dynamic.map((i) => i.path).join(", ")}: use a static import`);
  }
  if (pack) {
    const js = result.outputFiles.find((f) => f.path.endsWith(".cjs"));
    const map = result.outputFiles.find((f) => f.path.endsWith(".map"));
    writeFileSync(outfile, await packed(js.text, version));
    writeFileSync(`${outfile}.map`, map.text);
  }
  chmodSync(outfile, 0o755);
  return result.metafile;
}

/** The loader with `program` inside: brotli at the highest quality, in base64. */
async function packed(program, version) {
  const payload = brotliCompressSync(program, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: Buffer.byteLength(program),
    },
  }).toString("base64");
  const hash = createHash("sha256").update(program).digest("hex").slice(0, 16);
  const loader = LOADER.replace('"@PAYLOAD@"', JSON.stringify(payload))
    .replace('"@HASH@"', JSON.stringify(hash))
    .replace('"@LENGTH@"', String(program.length));
  const { code } = await transform(loader, { minify: true, target: "node20", legalComments: "none" });
  return `#!/usr/bin/env node\n// wile ${version}: the program is compressed below (its source: src/ of the wile repository).\n${code}`;
}

/**
 * The loader (plain JavaScript, minified into wile.cjs). It decompresses the program and compiles
 * it with vm.Script under this file's name, so stack traces and the source map name wile.cjs.
 * The cache, `<home>/cache/` (home as wile resolves it: --home, else WILE_HOME, else ~/.wile):
 * `wile-<program hash>.js`, the program decompressed (reading it costs less than loading zlib and
 * decompressing), and `wile-<hash>-<node version>-<arch>-<command>.v8`, V8's code cache for it
 * (saves the compile, and the lazy compiles of every function the command compiled in the run that
 * wrote it: one per command, so `version` does not write the cache that `issue` then uses). Both are read only
 * from directories this user owns and nobody else can write (the code is trusted like the program
 * itself), the program only at its exact length, the code cache only when V8 accepts it. They are
 * written (temp file + rename) at exit when missing or rejected, only into a home that exists:
 * the loader never creates the home. Any failure is ignored; the cache only saves time.
 * module.enableCompileCache (Node 22+) caches what Node's module loader compiles, not a vm.Script,
 * so this one mechanism serves every supported Node.
 */
const LOADER = `"use strict";
const fs = require("node:fs");
const { dirname, isAbsolute, join, resolve } = require("node:path");
const { Script } = require("node:vm");
const hash = "@HASH@";
const length = "@LENGTH@";

function home() {
  const argv = process.argv;
  for (let i = 2; i < argv.length && argv[i] !== "--"; i++) {
    if (argv[i] === "--home" && argv[i + 1]) return resolve(argv[i + 1]);
    if (argv[i].startsWith("--home=") && argv[i].length > 7) return resolve(argv[i].slice(7));
  }
  const env = process.env;
  if (env.WILE_HOME) return resolve(env.WILE_HOME);
  return resolve(env.HOME && isAbsolute(env.HOME) ? env.HOME : require("node:os").homedir(), ".wile");
}

/** A directory of this user's that no one else can write. */
function ours(dir) {
  const st = fs.statSync(dir);
  return st.isDirectory() && st.uid === process.getuid() && (st.mode & 0o022) === 0;
}

// One code cache per command: each holds the functions its command compiled.
const command = /^[a-z][a-z-]{0,19}$/.test(process.argv[2] || "") ? process.argv[2] : "other";
let base; // <home>/cache/wile-<hash>
let codeFile;
let program;
let cached;
try {
  const dir = join(home(), "cache");
  base = join(dir, "wile-" + hash);
  codeFile = base + "-" + process.version + "-" + process.arch + "-" + command + ".v8";
  if (ours(dirname(dir)) && ours(dir)) {
    program = fs.readFileSync(base + ".js", "utf8");
    if (program.length !== length) program = undefined;
    else cached = fs.readFileSync(codeFile);
  }
} catch {}
const unpacked = program === undefined;
if (unpacked)
  program = require("node:zlib").brotliDecompressSync(Buffer.from("@PAYLOAD@", "base64")).toString();
// In a standalone binary (SEA) __filename is the executable: the program is named wile.cjs there,
// which is how src/util/stack.ts finds its frames to map with the embedded map.
const filename = __filename === process.execPath ? "wile.cjs" : __filename;
const script = new Script(program, { filename, cachedData: cached });
// \`wile uninstall\` removes the cache with the program: it must not write it again at exit.
if (base && command !== "uninstall" && (cached === undefined || script.cachedDataRejected))
  process.once("exit", save);
script.runInThisContext()(module.exports, require, module, __filename, __dirname);

function save() {
  const dir = dirname(base);
  try {
    if (!ours(dirname(dir))) return;
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (e.code !== "EEXIST") return;
  }
  try {
    // Files of other wile versions go once a week old (a standalone binary and a wile.cjs of other
    // versions may share the home: removed at once, each would rewrite its cache on every run).
    for (const old of fs.readdirSync(dir)) {
      const other = join(dir, old);
      if (old.startsWith("wile-") && !old.startsWith("wile-" + hash) && Date.now() - fs.statSync(other).mtimeMs > 6048e5)
        fs.rmSync(other, { force: true });
    }
    const write = (file, data) => {
      const tmp = file + "." + process.pid;
      fs.writeFileSync(tmp, data, { mode: 0o600 });
      fs.renameSync(tmp, file);
    };
    if (unpacked) write(base + ".js", program);
    write(codeFile, script.createCachedData());
  } catch {}
}
`;
