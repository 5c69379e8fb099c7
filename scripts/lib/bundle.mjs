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
    // The source map beside it (<outfile>.map, no sources inside) turns -v stack traces back into
    // TypeScript names and positions (src/util/stack.ts); wile.cjs does not need it to run.
    minify: true,
    sourcemap: "external",
    sourcesContent: false,
    legalComments: "none",
    banner: { js: "#!/usr/bin/env node" },
    define: { __WILE_VERSION__: JSON.stringify(version) },
    logLevel: "warning",
  });
  chmodSync(outfile, 0o755);
}
