import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  installRecordPath,
  isLinkTo,
  ownProgram,
  readInstallRecord,
  sha256File,
  swapInto,
  versionOf,
  writeInstallRecord,
} from "../../../src/install/self";

const dir = mkdtempSync(join(tmpdir(), "wile-self-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("own program", () => {
  test("a standalone binary replaces itself with the binary for its CPU", () => {
    assert.deepEqual(ownProgram(["/home/me/.wile/bin/wile"], "arm64"), {
      kind: "binary",
      path: "/home/me/.wile/bin/wile",
      artifact: "wile-linux-arm64",
      runner: [],
    });
  });
  test("node + wile.cjs replaces the .cjs and runs the new one with the same node", () => {
    assert.deepEqual(ownProgram(["/usr/bin/node", "/home/me/.wile/bin/wile.cjs"], "x64"), {
      kind: "node",
      path: "/home/me/.wile/bin/wile.cjs",
      artifact: "wile.cjs",
      runner: ["/usr/bin/node"],
    });
  });
});

describe("install record", () => {
  test("round trip next to the program; missing or broken reads as null", async () => {
    const prog = join(dir, "wile");
    assert.equal(await readInstallRecord(prog), null);
    await writeInstallRecord(prog, { version: 1, downloadUrl: "https://example.com/r", link: null });
    assert.equal((await readInstallRecord(prog))?.downloadUrl, "https://example.com/r");
    writeFileSync(installRecordPath(prog), "{broken");
    assert.equal(await readInstallRecord(prog), null);
    rmSync(installRecordPath(prog));
  });
});

describe("swapping", () => {
  test("the new file takes the name, the old one becomes .prev (replacing an older backup)", async () => {
    const target = join(dir, "wile.cjs");
    writeFileSync(target, "v1");
    writeFileSync(`${target}.prev`, "v0");
    const fresh = join(dir, ".fresh");
    writeFileSync(fresh, "v2");
    const backup = await swapInto(fresh, target);
    assert.equal(backup, `${target}.prev`);
    assert.equal(readFileSync(target, "utf8"), "v2");
    assert.equal(readFileSync(backup, "utf8"), "v1");
    assert.equal(statSync(target).mode & 0o777, 0o755);
    assert.equal(await sha256File(target), createHash("sha256").update("v2").digest("hex"));
  });

  test("versionOf reads 'wile X' and refuses anything else", async () => {
    const good = join(dir, "good");
    writeFileSync(good, "#!/bin/sh\necho 'wile 1.2.3'\n");
    chmodSync(good, 0o755);
    assert.equal(await versionOf([], good), "1.2.3");
    assert.equal(await versionOf(["/bin/sh"], good), "1.2.3");
    const bad = join(dir, "bad");
    writeFileSync(bad, "#!/bin/sh\necho 'segfault' >&2\nexit 139\n");
    chmodSync(bad, 0o755);
    await assert.rejects(versionOf([], bad), /exit 139: segfault/);
    await assert.rejects(versionOf([], join(dir, "nope")), /cannot start it/);
  });

  test("isLinkTo: only a symlink that points at the program", async () => {
    const prog = join(dir, "prog");
    writeFileSync(prog, "");
    symlinkSync(prog, join(dir, "l1"));
    symlinkSync(join(dir, "other"), join(dir, "l2"));
    assert.equal(await isLinkTo(join(dir, "l1"), prog), true);
    assert.equal(await isLinkTo(join(dir, "l2"), prog), false);
    assert.equal(await isLinkTo(prog, prog), false);
    assert.equal(await isLinkTo(join(dir, "none"), prog), false);
  });
});
