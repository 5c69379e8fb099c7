import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { ensureDir, readFileIfExists, writeFileAtomic, writeFileAtomicNew } from "../../../src/store/fs-safe";

const modeOf = async (p: string) => (await stat(p)).mode & 0o777;

for (const umask of [0o000, 0o077]) {
  describe(`with umask ${umask.toString(8).padStart(3, "0")}`, () => {
    let dir: string;
    let saved: number;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "wile-fs-"));
      saved = process.umask(umask);
    });
    afterEach(() => {
      process.umask(saved);
    });

    test("ensureDir gives every directory it creates exactly the requested mode", async () => {
      await ensureDir(join(dir, "a", "b", "c"));
      for (const p of ["a", "a/b", "a/b/c"]) assert.equal(await modeOf(join(dir, p)), 0o700, p);
      await ensureDir(join(dir, "x", "y"), 0o755);
      for (const p of ["x", "x/y"]) assert.equal(await modeOf(join(dir, p)), 0o755, p);
    });

    test("ensureDir tightens an existing too-open directory to 0700 and leaves its parents", async () => {
      await mkdir(join(dir, "home"), { mode: 0o755 });
      const parentMode = await modeOf(dir);
      await ensureDir(join(dir, "home"));
      assert.equal(await modeOf(join(dir, "home")), 0o700);
      assert.equal(await modeOf(dir), parentMode);
    });

    test("writeFileAtomic leaves exact content and mode and no temp file", async () => {
      const file = join(dir, "key.pem");
      await writeFileAtomic(file, "old", 0o644);
      await writeFileAtomic(file, "secret\n", 0o600);
      assert.equal(await readFile(file, "utf8"), "secret\n");
      assert.equal(await modeOf(file), 0o600);
      await writeFileAtomic(join(dir, "pub"), new Uint8Array([1, 2, 3]));
      assert.equal(await modeOf(join(dir, "pub")), 0o644);
      assert.deepEqual((await readdir(dir)).sort(), ["key.pem", "pub"]);
    });
  });
}

describe("fs-safe errors", () => {
  test("writeFileAtomic over a directory fails and leaves no temp file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "wile-fs-"));
    await mkdir(join(dir, "target"));
    await assert.rejects(writeFileAtomic(join(dir, "target"), "x"));
    assert.deepEqual(await readdir(dir), ["target"]);
  });

  test("writeFileAtomicNew refuses to replace an existing file and leaves no temp file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "wile-fs-"));
    await writeFileAtomicNew(join(dir, "k"), "first", 0o600);
    await assert.rejects(writeFileAtomicNew(join(dir, "k"), "second", 0o600), { code: "EEXIST" });
    assert.equal(await readFile(join(dir, "k"), "utf8"), "first");
    assert.deepEqual(await readdir(dir), ["k"]);
  });

  test("readFileIfExists returns null only for a missing file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "wile-fs-"));
    assert.equal(await readFileIfExists(join(dir, "none")), null);
    await writeFileAtomic(join(dir, "f"), "x");
    assert.equal(await readFileIfExists(join(dir, "f")), "x");
    await assert.rejects(readFileIfExists(dir), { code: "EISDIR" });
  });
});
