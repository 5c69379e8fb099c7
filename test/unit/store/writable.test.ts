import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { checkWritable, NotWritableError, notWritable } from "../../../src/store/writable";

describe("writability before ordering (issue 10 finding 3)", () => {
  const dir = mkdtempSync(join(tmpdir(), "wile-writable-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a writable directory passes and keeps no probe file", async () => {
    mkdirSync(join(dir, "a"));
    await checkWritable([join(dir, "a")], "why");
    assert.deepEqual(readdirSync(join(dir, "a")), []);
  });

  test("a permission error names the nearest existing directory, the reason and the fix (exit 2)", async () => {
    const err = Object.assign(new Error("EACCES: permission denied"), {
      code: "EACCES",
      path: join(dir, "a", "archive", "20261129T000000Z"),
    });
    const e = await notWritable(err, "nothing was ordered from the CA");
    assert.ok(e instanceof NotWritableError);
    assert.equal(e.exitCode, 2);
    assert.match(
      e.message,
      new RegExp(
        `^${join(dir, "a")} is not writable for this user.*EACCES; nothing was ordered from the CA$`,
      ),
    );
    assert.match(e.hint ?? "", /chown -R \$\(id -un\)/);
    const rofs = await notWritable(Object.assign(new Error("x"), { code: "EROFS", path: dir }), "why");
    assert.match(rofs?.hint ?? "", /read-only file system/);
  });

  test("other errors are not dressed up as permission problems", async () => {
    assert.equal(
      await notWritable(Object.assign(new Error("x"), { code: "ENOENT", path: dir }), "why"),
      null,
    );
    assert.equal(await notWritable(new Error("plain"), "why"), null);
    writeFileSync(join(dir, "file"), "");
    await assert.rejects(
      checkWritable([join(dir, "file")], "why"),
      (e: NodeJS.ErrnoException) => e.code === "ENOTDIR",
    );
  });
});
