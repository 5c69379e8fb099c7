import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { acquireLock } from "../../../src/store/lock";

/** The pid of a process that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "0"]);
  assert.ok(r.pid);
  return r.pid;
}

describe("lock", () => {
  test("a second acquire returns null while the lock is held; release then acquire works", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "wile-lock-")), "x.lock");
    const a = await acquireLock(path);
    assert.ok(a);
    assert.equal(JSON.parse(await readFile(path, "utf8")).pid, process.pid);
    assert.equal(await acquireLock(path), null);
    await a.release();
    const b = await acquireLock(path);
    assert.ok(b);
    await b.release();
    assert.deepEqual(await readdir(join(path, "..")), []);
  });

  test("a lock left by a dead process is taken over", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "wile-lock-")), "x.lock");
    await writeFile(path, JSON.stringify({ pid: deadPid(), startedAt: "2020-01-01T00:00:00Z", id: "old" }));
    const lock = await acquireLock(path);
    assert.ok(lock);
    assert.equal(JSON.parse(await readFile(path, "utf8")).pid, process.pid);
    assert.equal(await acquireLock(path), null);
    await lock.release();
  });

  test("a lock held by a live process (pid 1) is respected", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "wile-lock-")), "x.lock");
    await writeFile(path, JSON.stringify({ pid: 1, startedAt: "2020-01-01T00:00:00Z", id: "other" }));
    assert.equal(await acquireLock(path), null);
  });

  test("of many concurrent takeovers of a stale lock exactly one wins", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "wile-lock-")), "x.lock");
    await writeFile(path, JSON.stringify({ pid: deadPid(), startedAt: "2020-01-01T00:00:00Z", id: "old" }));
    const results = await Promise.all(Array.from({ length: 10 }, () => acquireLock(path)));
    assert.equal(results.filter((l) => l !== null).length, 1);
  });

  test("release does not remove a lock that someone else now holds", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "wile-lock-")), "x.lock");
    const lock = await acquireLock(path);
    assert.ok(lock);
    const other = JSON.stringify({ pid: 1, startedAt: "2020-01-01T00:00:00Z", id: "other" });
    await writeFile(path, other);
    await lock.release();
    assert.equal(await readFile(path, "utf8"), other);
  });
});
