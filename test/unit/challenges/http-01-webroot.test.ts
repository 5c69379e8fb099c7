import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fsp, {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rmdir,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import type { ChallengeContext } from "../../../src/acme/solver";
import { checkWebroot, WebrootSolver } from "../../../src/challenges/http-01-webroot";
import type { WebrootJournal } from "../../../src/store/leftovers";
import { UsageError, WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { printable } from "../../../src/util/text";
import { skipUnlessAvailable } from "../../helpers/ci";

const ctx = (token: string, value = "example.com"): ChallengeContext => ({
  identifier: { type: "dns", value },
  token,
  keyAuthorization: `${token}.thumbprint_-0`,
});
const modeOf = async (p: string) => (await stat(p)).mode & 0o777;
const solverFor = (webroot: string, names = ["example.com"]) =>
  new WebrootSolver({
    webroots: new Map(names.map((n) => [n, webroot])),
    logger: silentLogger,
    preflight: false,
  });

describe("WebrootSolver present/cleanup", () => {
  let base: string;
  let webroot: string;
  let saved: number;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "wile-webroot-"));
    webroot = join(base, "www");
    await mkdir(webroot);
    saved = process.umask(0o077);
  });
  afterEach(() => {
    process.umask(saved);
  });

  test("writes exactly the key authorization, 0644 under umask 077, in 0755 directories", async () => {
    const s = solverFor(webroot);
    await s.present(ctx("tok-EN_1"));
    const dir = join(webroot, ".well-known", "acme-challenge");
    assert.equal(await readFile(join(dir, "tok-EN_1"), "utf8"), "tok-EN_1.thumbprint_-0");
    assert.equal(await modeOf(join(dir, "tok-EN_1")), 0o644);
    assert.equal(await modeOf(dir), 0o755);
    assert.equal(await modeOf(join(webroot, ".well-known")), 0o755);
  });

  for (const token of ["../x", "a/b", "", "a.b", "tok\0"]) {
    test(`rejects the token ${JSON.stringify(token)} and writes nothing`, async () => {
      await assert.rejects(solverFor(webroot).present(ctx(token)), WileError);
      assert.deepEqual(await readdir(webroot), []);
    });
  }

  test("refuses a .well-known symlink that leads outside the webroot and writes nothing there", async () => {
    const outside = join(base, "outside");
    await mkdir(outside);
    await symlink(outside, join(webroot, ".well-known"));
    await assert.rejects(solverFor(webroot).present(ctx("tok")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(e.message, /outside the webroot/);
      return true;
    });
    assert.deepEqual(await readdir(outside), []);
  });

  test("refuses an acme-challenge symlink to outside, even via a relative link", async () => {
    await mkdir(join(base, "elsewhere"));
    await mkdir(join(webroot, ".well-known"));
    await symlink("../../elsewhere", join(webroot, ".well-known", "acme-challenge"));
    await assert.rejects(solverFor(webroot).present(ctx("tok")), /outside the webroot/);
    assert.deepEqual(await readdir(join(base, "elsewhere")), []);
  });

  test("accepts a symlink that stays inside the webroot", async () => {
    await mkdir(join(webroot, "shared"));
    await symlink("shared", join(webroot, ".well-known"));
    const s = solverFor(webroot);
    await s.present(ctx("tok"));
    assert.equal(
      await readFile(join(webroot, "shared", "acme-challenge", "tok"), "utf8"),
      "tok.thumbprint_-0",
    );
    await s.cleanup(ctx("tok"));
    assert.deepEqual(await readdir(join(webroot, "shared")), []);
    assert.ok((await lstat(join(webroot, ".well-known"))).isSymbolicLink());
  });

  test("a webroot that is itself a symlink is fine", async () => {
    const link = join(base, "www-link");
    await symlink(webroot, link);
    const s = solverFor(link);
    await s.present(ctx("tok"));
    assert.equal(
      await readFile(join(webroot, ".well-known", "acme-challenge", "tok"), "utf8"),
      "tok.thumbprint_-0",
    );
  });

  test("never writes through a symlink at the token's own name", async () => {
    const dir = join(webroot, ".well-known", "acme-challenge");
    await mkdir(dir, { recursive: true });
    const victim = join(base, "victim");
    await writeFile(victim, "precious");
    await symlink(victim, join(dir, "tok"));
    await solverFor(webroot).present(ctx("tok"));
    assert.equal(await readFile(victim, "utf8"), "precious");
    assert.ok((await lstat(join(dir, "tok"))).isFile());
  });

  test("cleanup removes the file and the directories it created once empty, and tolerates a missing file", async () => {
    const s = solverFor(webroot, ["a.example", "b.example"]);
    await s.present(ctx("one", "a.example"));
    await s.present(ctx("two", "b.example"));
    await s.cleanup(ctx("one", "a.example"));
    assert.deepEqual(await readdir(join(webroot, ".well-known", "acme-challenge")), ["two"]);
    await s.cleanup(ctx("two", "b.example"));
    assert.deepEqual(await readdir(webroot), []);
    await s.cleanup(ctx("two", "b.example"));
    await s.cleanup(ctx("never-presented"));
  });

  test("another wile removing the empty challenge directory just before the write: walk and write again", async (t) => {
    // cron renews certificates in parallel, often into one webroot; each removes the challenge
    // directory it created once empty. Here that happens right between this solver finding the
    // directory and opening its file (node:fs/promises.open, patched for this test).
    const dir = join(webroot, ".well-known", "acme-challenge");
    const realOpen = fsp.open;
    let removed = 0;
    t.mock.method(fsp, "open", async (...args: Parameters<typeof fsp.open>) => {
      if (removed === 0 && String(args[0]).startsWith(`${dir}/`)) {
        removed++;
        await rmdir(dir);
      }
      return realOpen(...args);
    });
    syncBuiltinESMExports();
    t.after(() => {
      t.mock.restoreAll();
      syncBuiltinESMExports();
    });
    const s = solverFor(webroot);
    await s.present(ctx("tok"));
    assert.equal(removed, 1);
    assert.equal(await readFile(join(dir, "tok"), "utf8"), "tok.thumbprint_-0");
    await s.cleanup(ctx("tok"));
    assert.deepEqual(await readdir(webroot), []);
  });

  test("checkWebroot: another wile removing the empty challenge directory right after the walk is no 'not writable'", async (t) => {
    // Found by the concurrency of test/e2e/crash.test.ts: homes sharing one webroot in parallel.
    const dir = join(webroot, ".well-known", "acme-challenge");
    await mkdir(dir, { recursive: true });
    const realAccess = fsp.access;
    let removed = 0;
    t.mock.method(fsp, "access", async (...args: Parameters<typeof fsp.access>) => {
      if (removed === 0 && String(args[0]) === dir) {
        removed++;
        await rmdir(dir);
        await rmdir(join(webroot, ".well-known"));
      }
      return realAccess(...args);
    });
    syncBuiltinESMExports();
    t.after(() => {
      t.mock.restoreAll();
      syncBuiltinESMExports();
    });
    assert.equal(await checkWebroot(webroot), await realpath(webroot));
    assert.equal(removed, 1);
  });

  test("cleanup keeps directories that existed before and other files", async () => {
    const dir = join(webroot, ".well-known", "acme-challenge");
    await mkdir(dir, { recursive: true });
    await writeFile(join(webroot, ".well-known", "security.txt"), "x");
    const s = solverFor(webroot);
    await s.present(ctx("tok"));
    await s.cleanup(ctx("tok"));
    assert.deepEqual(await readdir(dir), []);
    assert.deepEqual((await readdir(join(webroot, ".well-known"))).sort(), [
      "acme-challenge",
      "security.txt",
    ]);
  });

  // Issue 10 finding 6: these were "internal error ... This is a bug in wile".
  test("a dangling acme-challenge symlink is a WileError naming the link, its target and the fix", async () => {
    await mkdir(join(webroot, ".well-known"));
    await symlink("gone", join(webroot, ".well-known", "acme-challenge"));
    await assert.rejects(solverFor(webroot).present(ctx("tok")), (e: unknown) => {
      assert.ok(e instanceof WileError, String(e));
      assert.match(e.message, /acme-challenge is a symbolic link to gone, which does not exist/);
      assert.match(e.hint ?? "", /mkdir -p .*\.well-known\/gone|rm .*acme-challenge/);
      return true;
    });
    await assert.rejects(
      checkWebroot(webroot),
      (e: unknown) => e instanceof UsageError && /gone/.test(e.message),
    );
  });

  test("a directory at the token's path is a WileError naming it, and stays", async () => {
    const dir = join(webroot, ".well-known", "acme-challenge", "tok");
    await mkdir(dir, { recursive: true });
    await assert.rejects(solverFor(webroot).present(ctx("tok")), (e: unknown) => {
      assert.ok(e instanceof WileError, String(e));
      assert.match(e.message, /acme-challenge\/tok is a directory/);
      assert.match(e.hint ?? "", /rmdir/);
      return true;
    });
    assert.ok((await stat(dir)).isDirectory());
  });

  test("the journal records each file and directory before it is made, and forgets it once removed", async () => {
    const seen: string[] = [];
    const journal = {
      addFile: async (p: string) => {
        seen.push(
          `+file ${p} exists=${await lstat(p).then(
            () => true,
            () => false,
          )}`,
        );
      },
      removeFile: async (p: string) => {
        seen.push(`-file ${p}`);
      },
      addDir: async (p: string) => {
        seen.push(
          `+dir ${p} exists=${await lstat(p).then(
            () => true,
            () => false,
          )}`,
        );
      },
      removeDir: async (p: string) => {
        seen.push(`-dir ${p}`);
      },
    } as unknown as WebrootJournal;
    const s = new WebrootSolver({
      webroots: new Map([["example.com", webroot]]),
      logger: silentLogger,
      preflight: false,
      journal,
    });
    await s.present(ctx("tok"));
    await s.cleanup(ctx("tok"));
    const wk = join(await realpath(webroot), ".well-known");
    assert.deepEqual(seen, [
      `+dir ${wk} exists=false`,
      `+dir ${join(wk, "acme-challenge")} exists=false`,
      `+file ${join(wk, "acme-challenge", "tok")} exists=false`,
      `-file ${join(wk, "acme-challenge", "tok")}`,
      `-dir ${join(wk, "acme-challenge")}`,
      `-dir ${wk}`,
    ]);
  });

  test("a name without a webroot is an error", async () => {
    await assert.rejects(
      solverFor(webroot).present(ctx("tok", "other.example")),
      /No webroot configured for other\.example/,
    );
  });
});

describe("checkWebroot", () => {
  test("returns the real absolute path of a good webroot", async () => {
    const base = await mkdtemp(join(tmpdir(), "wile-webroot-"));
    await mkdir(join(base, "www"));
    await symlink(join(base, "www"), join(base, "link"));
    assert.equal(await checkWebroot(join(base, "link")), await realpath(join(base, "www")));
  });

  test("a missing webroot says so and suggests creating it", async () => {
    const missing = join(await mkdtemp(join(tmpdir(), "wile-webroot-")), "nope");
    await assert.rejects(checkWebroot(missing), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.ok(e.message.includes(missing) && /does not exist/.test(e.message));
      assert.match(e.hint ?? "", /[Cc]reate it/);
      return true;
    });
  });

  test("a file is not a webroot", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "wile-webroot-")), "f");
    await writeFile(file, "");
    await assert.rejects(
      checkWebroot(file),
      (e: unknown) => e instanceof UsageError && /is a file/.test(e.message),
    );
  });

  test("an unwritable webroot names the user and the fix", async (t) => {
    const base = await mkdtemp(join(tmpdir(), "wile-webroot-"));
    const www = join(base, "www");
    await mkdir(www);
    await chmod(www, 0o555);
    if (process.getuid?.() !== 0) {
      await assert.rejects(checkWebroot(www), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.match(e.message, /not writable by user/);
        return true;
      });
      return;
    }
    // Root bypasses permission bits, so run the check as 'nobody'.
    await chmod(base, 0o755);
    const fixture = join(import.meta.dirname, "fixtures", "check-webroot.ts");
    const args = [
      "--reuid=nobody",
      "--regid=nogroup",
      "--clear-groups",
      process.execPath,
      "--import",
      "tsx",
      fixture,
    ];
    const r = spawnSync("setpriv", [...args, www], { encoding: "utf8", cwd: process.cwd() });
    const skip = skipUnlessAvailable(
      (r.error || r.status !== 0) &&
        `running as root, which bypasses permissions, and setpriv as nobody failed: ${r.error ?? r.stderr}`,
    );
    if (skip) return t.skip(skip);
    const out = JSON.parse(r.stdout);
    assert.equal(out.name, "UsageError");
    assert.equal(out.exitCode, 2);
    assert.ok(out.message.includes(www));
    assert.match(out.message, /not writable by user nobody/);
    assert.match(out.hint, /ownership|run wile as the user that owns it/);

    // Writable .well-known/acme-challenge inside a read-only webroot is enough.
    await chmod(www, 0o755);
    await mkdir(join(www, ".well-known", "acme-challenge"), { recursive: true });
    await chmod(join(www, ".well-known", "acme-challenge"), 0o777);
    await chmod(www, 0o555);
    const ok = JSON.parse(spawnSync("setpriv", [...args, www], { encoding: "utf8" }).stdout);
    assert.equal(ok.ok, www);
  });
});

test("printable flattens control, non-ASCII and white space and cuts at the limit", () => {
  assert.equal(printable("a\r\n b\u0000é c", 80), "a b c");
  assert.equal(printable("x".repeat(100), 80), `${"x".repeat(80)}...`);
});

test("present with a webroot that vanished is a WileError naming it", async () => {
  const gone = join(await mkdtemp(join(tmpdir(), "wile-webroot-")), "gone");
  await assert.rejects(solverFor(gone).present(ctx("tok")), (e: unknown) => {
    assert.ok(e instanceof WileError);
    assert.ok(e.message.includes(gone));
    return true;
  });
});
