/**
 * -v stack traces name wile's TypeScript functions and positions although dist/wile.cjs is
 * minified (issue 10 finding 7): the build writes dist/wile.cjs.map, the standalone binary embeds
 * it, and src/util/stack.ts maps the frames. The error is a usage error found deep in the option
 * parsing (a name whose last label is numeric), so nothing is contacted; no test-only knob.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { skipUnlessAvailable } from "../helpers/ci";
import { hasStackTrace } from "../helpers/e2e";
import { dump, repoRoot, runWile, tempDir, wileCjs, wileX64 } from "../helpers/wile";

const args = (webroot: string) => ["issue", "-d", "www.example.1", "-w", webroot, "--no-preflight"];

/** Checks a mapped stack: the error's class, wile's functions, and positions that point at them. */
function assertMapped(stderr: string): void {
  assert.match(stderr, /^UsageError: "www\.example\.1" /m, "the error's class by its source name");
  const frames = [...stderr.matchAll(/^ {4}at (?:async )?(\S+) \((src\/[\w/-]+\.ts):(\d+):(\d+)\)$/gm)];
  assert.ok(frames.length >= 3, `TypeScript frames expected:\n${stderr}`);
  const main = frames.find((f) => f[1] === "runMain");
  assert.ok(main, `a frame for runMain (src/main.ts):\n${stderr}`);
  // The position is right: that line of src/main.ts calls the command.
  const line = readFileSync(join(repoRoot, main[2] as string), "utf8").split("\n")[Number(main[3]) - 1] ?? "";
  assert.match(line, /\.run\(/, `src/main.ts:${main[3]} is "${line.trim()}"`);
  assert.ok(
    frames.some((f) => f[2] === "src/cli/names.ts" && /^parse\w+$/.test(f[1] as string)),
    `the parser that threw, by name:\n${stderr}`,
  );
  assert.doesNotMatch(stderr, /wile\.cjs:\d+:\d+/, "no frame left in terms of the bundle");
}

describe("-v stack traces (source map)", () => {
  it("dist/wile.cjs with its map: TypeScript names and positions; without -v no stack", async () => {
    assert.ok(existsSync(`${wileCjs}.map`), "npm run build writes dist/wile.cjs.map");
    const webroot = tempDir("wile-e2e-stack-");
    const r = await runWile([...args(webroot), "-v"], { home: join(webroot, "home") });
    assert.equal(r.code, 2, dump(r));
    assertMapped(r.stderr);
    const quiet = await runWile(args(webroot), { home: join(webroot, "home") });
    assert.equal(quiet.code, 2, dump(quiet));
    assert.ok(!hasStackTrace(quiet.stderr), dump(quiet));
  });

  it("wile.cjs copied alone still works and prints the bundle's frames with -v", async () => {
    const dir = tempDir("wile-e2e-stack-alone-");
    copyFileSync(wileCjs, join(dir, "wile.cjs"));
    // Run through its #!/usr/bin/env node line, as a user who downloaded only this file would.
    const r = await runWile([...args(dir), "-v"], { home: join(dir, "home"), bin: join(dir, "wile.cjs") });
    assert.equal(r.code, 2, dump(r));
    assert.ok(hasStackTrace(r.stderr), dump(r));
    assert.match(r.stderr, /wile\.cjs:\d+:\d+\)$/m, dump(r));
  });

  const missing = !existsSync(wileX64)
    ? `${wileX64} is not built (npm run build:sea)`
    : process.arch !== "x64" && "this machine cannot run the x64 binary";
  it("the standalone binary maps with its embedded map", { skip: skipUnlessAvailable(missing) }, async () => {
    const webroot = tempDir("wile-e2e-stack-sea-");
    const r = await runWile([...args(webroot), "-v"], { home: join(webroot, "home"), bin: wileX64 });
    assert.equal(r.code, 2, dump(r));
    assertMapped(r.stderr);
  });
});
