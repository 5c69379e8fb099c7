import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { journalPath, removeLeftovers, sweepLeftovers, WebrootJournal } from "../../../src/store/leftovers";
import { silentLogger } from "../../../src/util/log";

function setup() {
  const base = mkdtempSync(join(tmpdir(), "wile-leftovers-"));
  const home = join(base, "home");
  const webroot = join(base, "www");
  const challenge = join(webroot, ".well-known", "acme-challenge");
  mkdirSync(join(home, "certs", "x.example"), { recursive: true });
  return { home, webroot, challenge, journal: journalPath(home, "x.example") };
}

describe("webroot leftovers (issue 10 finding 8)", () => {
  test("a record left by a dead run: only regular files still holding what wile wrote go", async () => {
    const { webroot, challenge, journal } = setup();
    const j = new WebrootJournal(journal);
    await j.addDir(join(webroot, ".well-known"));
    await j.addDir(challenge);
    mkdirSync(challenge, { recursive: true });
    await j.addFile(join(challenge, "tok1"), "tok1.thumb");
    writeFileSync(join(challenge, "tok1"), "tok1.thumb");
    await j.addFile(join(challenge, "tok2"), "tok2.thumb");
    writeFileSync(join(challenge, "tok2"), "changed by someone else");
    await j.addFile(join(challenge, "tok3"), "tok3.thumb"); // killed before the write
    symlinkSync("/etc/passwd", join(challenge, "tok4"));
    await j.addFile(join(challenge, "tok4"), "x");
    // The dead run's record stays: removeLeftovers reads it as a new run would.
    const removed = await removeLeftovers(journal, silentLogger);
    assert.deepEqual(removed, [join(challenge, "tok1")]);
    assert.equal(readFileSync(join(challenge, "tok2"), "utf8"), "changed by someone else");
    assert.ok(existsSync(join(challenge, "tok4")), "a symlink is not what wile wrote");
    assert.ok(!existsSync(journal), "the record is gone");
  });

  test("paths outside a webroot's challenge directory in a record are never touched", async () => {
    const { home, webroot, journal } = setup();
    const victim = join(webroot, "index.html");
    mkdirSync(webroot, { recursive: true });
    writeFileSync(victim, "x");
    writeFileSync(
      journal,
      JSON.stringify({ version: 1, files: [{ path: victim, content: "x" }], dirs: [webroot] }),
    );
    await sweepLeftovers(home, silentLogger);
    assert.equal(readFileSync(victim, "utf8"), "x");
  });

  test("empty directories wile made are removed once their files are", async () => {
    const { home, webroot, challenge, journal } = setup();
    const j = new WebrootJournal(journal);
    await j.addDir(join(webroot, ".well-known"));
    await j.addDir(challenge);
    mkdirSync(challenge, { recursive: true });
    await j.addFile(join(challenge, "tok"), "tok.t");
    writeFileSync(join(challenge, "tok"), "tok.t");
    await sweepLeftovers(home, silentLogger);
    assert.ok(!existsSync(join(webroot, ".well-known")));
    // A record that is not JSON is dropped (nothing else is done).
    writeFileSync(journal, "garbage");
    await sweepLeftovers(home, silentLogger);
    assert.ok(!existsSync(journal));
  });

  test("a journal emptied by cleanup leaves no record file", async () => {
    const { challenge, journal } = setup();
    const j = new WebrootJournal(journal);
    await j.addFile(join(challenge, "tok"), "t");
    assert.ok(existsSync(journal));
    await j.removeFile(join(challenge, "tok"));
    assert.ok(!existsSync(journal));
  });
});
