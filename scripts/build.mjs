#!/usr/bin/env node
// Bundles src/ into dist/wile.cjs: one CommonJS file with a node shebang, runtime deps inlined.
import { chmodSync, readFileSync } from "node:fs";
import { build } from "esbuild";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const out = new URL("../dist/wile.cjs", import.meta.url).pathname;

await build({
  entryPoints: [new URL("../src/cli.ts", import.meta.url).pathname],
  outfile: out,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  // Full minification keeps the one file well under its 250 KB budget and parses faster at start-up.
  // Error messages are all written out in the source; -v stack traces show minified names.
  minify: true,
  legalComments: "none",
  banner: { js: "#!/usr/bin/env node" },
  define: { __WILE_VERSION__: JSON.stringify(pkg.version) },
  logLevel: "warning",
});
chmodSync(out, 0o755);
