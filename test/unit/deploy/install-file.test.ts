import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { installFile, secretMode } from "../../../src/deploy/install-file";

const modeOf = async (p: string) => (await stat(p)).mode & 0o7777;

describe("installFile: modes of files that hold a key (issue 9, bug 4)", () => {
  test("a key written over a world-readable file becomes 0600; the old mode is not kept", async () => {
    const d = await mkdtemp(join(tmpdir(), "wile-install-"));
    const p = join(d, "site.key");
    await writeFile(p, "old\n");
    await chmod(p, 0o644);
    await installFile(p, "KEY\n", { secret: true });
    assert.equal(await readFile(p, "utf8"), "KEY\n");
    assert.equal(await modeOf(p), 0o600);
  });

  test("a deliberate group set-up (0640, 0440) is kept; an explicit mode wins over everything", async () => {
    const d = await mkdtemp(join(tmpdir(), "wile-install-"));
    const p = join(d, "site.key");
    await writeFile(p, "old\n");
    await chmod(p, 0o640);
    await installFile(p, "KEY\n", { secret: true });
    assert.equal(await modeOf(p), 0o640);
    await installFile(p, "KEY\n", { secret: true, mode: 0o644 });
    assert.equal(await modeOf(p), 0o644, "the mode the operator asked for explicitly");
  });

  test("a file without a key keeps its mode; new files get 0644, keys 0600 (0640 with a group)", async () => {
    const d = await mkdtemp(join(tmpdir(), "wile-install-"));
    const cert = join(d, "cert.pem");
    await writeFile(cert, "old\n");
    await chmod(cert, 0o664);
    await installFile(cert, "CERT\n", { secret: false });
    assert.equal(await modeOf(cert), 0o664);
    await installFile(join(d, "new.pem"), "CERT\n", { secret: false });
    assert.equal(await modeOf(join(d, "new.pem")), 0o644);
    await installFile(join(d, "new.key"), "KEY\n", { secret: true });
    assert.equal(await modeOf(join(d, "new.key")), 0o600);
  });

  test("secretMode", () => {
    assert.equal(secretMode(undefined, undefined), 0o600);
    assert.equal(secretMode(undefined, { gid: 5 }), 0o640);
    assert.equal(secretMode(0o100644, undefined), 0o600);
    assert.equal(secretMode(0o100604, { gid: 5 }), 0o640);
    assert.equal(secretMode(0o100600, undefined), 0o600);
    assert.equal(secretMode(0o100440, undefined), 0o440);
  });
});
