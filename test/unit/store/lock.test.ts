import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { acquireLock, describeLockHolder, processStartTime } from "../../../src/store/lock";

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

  test("a lock whose pid now belongs to another live process (start time differs) is taken over", async (t) => {
    const path = join(await mkdtemp(join(tmpdir(), "wile-lock-")), "x.lock");
    const sleeper = spawn("sleep", ["30"]);
    t.after(() => sleeper.kill());
    const pid = sleeper.pid as number;
    const start = processStartTime(pid);
    assert.match(start ?? "", /^\d+$/, "start time of a live process from /proc");
    // The same pid with its real start time: the holder is alive, the lock is respected.
    await writeFile(
      path,
      JSON.stringify({ pid, procStart: start, startedAt: "2026-11-29T08:00:00Z", id: "a" }),
    );
    assert.equal(await acquireLock(path), null);
    // The same pid with another start time: the pid was reused, the lock is stale.
    const wrong = String(Number(start) + 1);
    await writeFile(
      path,
      JSON.stringify({ pid, procStart: wrong, startedAt: "2026-11-29T08:00:00Z", id: "b" }),
    );
    assert.equal(await describeLockHolder(path), null);
    const lock = await acquireLock(path, "wile test");
    assert.ok(lock, "taken over");
    const mine = JSON.parse(await readFile(path, "utf8"));
    assert.equal(mine.pid, process.pid);
    assert.equal(mine.procStart, processStartTime(process.pid));
    await lock.release();
  });

  test("the holder is described with its command, pid and start", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "wile-lock-")), "x.lock");
    const lock = await acquireLock(path, "wile cron");
    assert.ok(lock);
    assert.match(
      (await describeLockHolder(path)) ?? "",
      new RegExp(`^wile cron \\(pid ${process.pid}, since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\)$`),
    );
    await lock.release();
    assert.equal(await describeLockHolder(path), null);
  });

  test("temp files of a run killed while locking are removed once a minute old", async () => {
    const dir = await mkdtemp(join(tmpdir(), "wile-lock-"));
    const path = join(dir, "x.lock");
    await writeFile(join(dir, ".x.lock.tmp-old"), "{}");
    await writeFile(join(dir, ".x.lock.takeover.tmp-old"), "{}");
    await writeFile(join(dir, ".x.lock.tmp-new"), "{}");
    const old = new Date(Date.now() - 120_000);
    await utimes(join(dir, ".x.lock.tmp-old"), old, old);
    await utimes(join(dir, ".x.lock.takeover.tmp-old"), old, old);
    const lock = await acquireLock(path);
    assert.ok(lock);
    await lock.release();
    assert.deepEqual(await readdir(dir), [".x.lock.tmp-new"]);
  });
});
