// The one set of esbuild settings for wile.cjs, used by build.mjs (dist/wile.cjs) and release.mjs.
import { chmodSync, readFileSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("../../", import.meta.url).pathname;

export const packageVersion = () => JSON.parse(readFileSync(`${root}package.json`, "utf8")).version;

/** Bundles src/ into `outfile`: one CommonJS file with a node shebang, runtime deps inlined. */
export async function bundle(outfile, version = packageVersion()) {
  await build({
    entryPoints: [`${root}src/cli.ts`],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // Full minification keeps the one file under its 250 KB budget and parses faster at start-up.
    // Error messages are all written out in the source; -v stack traces show minified names.
    minify: true,
    legalComments: "none",
    banner: { js: "#!/usr/bin/env node" },
    define: { __WILE_VERSION__: JSON.stringify(version) },
    logLevel: "warning",
  });
  chmodSync(outfile, 0o755);
}
