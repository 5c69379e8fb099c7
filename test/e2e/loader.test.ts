/**
 * dist/wile.cjs is a loader with the program compressed inside (scripts/lib/bundle.mjs, issue 13).
 * It keeps the decompressed program and V8's code cache in <home>/cache, and must: never create the
 * home; use the cache only from directories this user owns that nobody else can write (the code is
 * trusted like the program); ignore a damaged one and write it again. A planted program of the
 * right length shows which of these cases read the cache. No Pebble: `wile version` only.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { dump, runWile, tempDir } from "../helpers/wile";

const version = async (home: string) => {
  const r = await runWile(["version"], { home });
  assert.equal(r.code, 0, dump(r));
  return r.stdout;
};

/** A home where `wile version` has written the cache; the names of its files. */
async function warmHome(): Promise<{ home: string; cache: string; program: string }> {
  const home = join(tempDir("wile-e2e-loader-"), "home");
  mkdirSync(home, { mode: 0o700 });
  assert.match(await version(home), /^wile \d/);
  const cache = join(home, "cache");
  const program = readdirSync(cache).find((f) => f.endsWith(".js"));
  assert.ok(program, `the program is kept in ${cache}: ${readdirSync(cache).join(", ")}`);
  return { home, cache, program: join(cache, program) };
}

/** Replaces the kept program by one of the same length that prints PLANTED, and drops the code caches. */
function plant(cache: string, program: string): void {
  const length = readFileSync(program, "utf8").length;
  const code = `(function (exports, require, module) { process.stdout.write("PLANTED\\n"); })`;
  writeFileSync(program, `${code}/*${"x".repeat(length - code.length - 4)}*/`);
  assert.equal(readFileSync(program, "utf8").length, length);
  for (const f of readdirSync(cache))
    if (f.endsWith(".v8")) writeFileSync(join(cache, f), "not a code cache");
}

describe("wile.cjs loader and its cache in the home", () => {
  it("a missing home is not created; an existing one gets cache/ (0700) with 0600 files", async () => {
    const missing = join(tempDir("wile-e2e-loader-"), "no-home");
    assert.match(await version(missing), /^wile \d/);
    assert.ok(!existsSync(missing), "the loader does not create the home");

    const { home, cache } = await warmHome();
    assert.equal(statSync(cache).mode & 0o777, 0o700);
    const files = readdirSync(cache);
    assert.ok(
      files.some((f) => /-version\.v8$/.test(f)),
      files.join(", "),
    );
    for (const f of files) assert.equal(statSync(join(cache, f)).mode & 0o777, 0o600, f);
    assert.match(await version(home), /^wile \d/, "the second run, from the cache");
  });

  it("the kept program is what runs, from a cache directory of this user's; not when others can write it", async () => {
    const { home, cache, program } = await warmHome();
    plant(cache, program);
    assert.equal(await version(home), "PLANTED\n", "a cache in a 0700 home of this user's is used");

    chmodSync(cache, 0o770);
    assert.match(await version(home), /^wile \d/, "a group-writable cache directory is not read");
    chmodSync(cache, 0o700);
    chmodSync(home, 0o777);
    assert.match(await version(home), /^wile \d/, "nor one in a world-writable home");
  });

  it("a damaged cache is ignored and written again", async () => {
    const { home, cache, program } = await warmHome();
    writeFileSync(program, "truncated");
    for (const f of readdirSync(cache)) if (f.endsWith(".v8")) writeFileSync(join(cache, f), "garbage");
    assert.match(await version(home), /^wile \d/);
    assert.notEqual(readFileSync(program, "utf8"), "truncated", "the program was written again");
    const v8 = readdirSync(cache).find((f) => /-version\.v8$/.test(f)) as string;
    assert.notEqual(readFileSync(join(cache, v8), "utf8"), "garbage", "so was the rejected code cache");
    assert.match(await version(home), /^wile \d/);
  });
});
