/**
 * End to end against a real Pebble: `wile revoke` (account key and --with-cert-key, reasons as
 * Pebble records them in /cert-status-by-serial) and `wile remove` (archive and --purge), with the
 * confirmation rule: no terminal and no --yes means exit 2 and nothing done.
 */
import assert from "node:assert/strict";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { keyMatchesCert, serialHex } from "../helpers/certs";
import { certFiles, hasStackTrace, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;

before(async () => {
  env = await startTestEnv();
  home = join(tempDir("wile-e2e-revoke-"), "wile");
});

after(async () => {
  await env?.stop();
});

const wile = (args: string[], timeoutMs = 60_000) => runWile(args, { home, timeoutMs });

async function issue(name: string): Promise<string> {
  const r = await wile(issueArgs(env, [name]));
  assert.equal(r.code, 0, dump(r));
  return serialHex(certFiles(home, name).cert);
}

type Status = { Status: string; Reason?: number; Serial: string };
const status = async (serial: string) => (await env.certStatus(serial)) as Status;

describe("wile revoke against Pebble", () => {
  it("refuses without --yes when stdin is not a terminal: exit 2, says what it would do, nothing revoked", async () => {
    const serial = await issue("revoke-a.example");
    const r = await wile(["revoke", "revoke-a.example", "--reason", "keyCompromise"]);
    assert.equal(r.code, 2, dump(r));
    assert.match(r.stderr, /--yes/, "the message says to add --yes");
    assert.match(r.stderr, /revoke the certificate of revoke-a\.example/);
    assert.match(r.stderr, /keyCompromise \(1\)/, "the plan names the reason");
    assert.ok(!hasStackTrace(r.stderr), r.stderr);
    assert.equal((await status(serial)).Status, "Valid", "nothing was revoked");
  });

  it("revokes with the account key and --reason keyCompromise (CA from renewal.json)", async () => {
    const serial = serialHex(certFiles(home, "revoke-a.example").cert);
    const r = await wile(["revoke", "revoke-a.example", "--reason", "keyCompromise", "--yes"]);
    assert.equal(r.code, 0, dump(r));
    assert.match(r.stderr, /Revoked the certificate of revoke-a\.example/);
    assert.match(r.stderr, /wile remove revoke-a\.example|--force/, "suggests what to do next");
    const s = await status(serial);
    assert.equal(s.Status, "Revoked", JSON.stringify(s));
    assert.equal(s.Reason, 1, `reason keyCompromise = 1: ${JSON.stringify(s)}`);
    // revoke does not remove: the files stay.
    assert.ok(existsSync(certFiles(home, "revoke-a.example").cert));
  });

  it("says so (exit 0) when the certificate was already revoked", async () => {
    const r = await wile(["revoke", "revoke-a.example", "--yes", "--json"]);
    assert.equal(r.code, 0, dump(r));
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(doc.alreadyRevoked, true, r.stdout);
  });

  it("revokes with --with-cert-key (jwk of the certificate key) and --reason superseded", async () => {
    const serial = await issue("revoke-b.example");
    const f = certFiles(home, "revoke-b.example");
    assert.ok(keyMatchesCert(f.privkey, f.cert).match);
    const r = await wile([
      "revoke",
      "revoke-b.example",
      "--with-cert-key",
      "--reason",
      "superseded",
      "--yes",
      "--json",
    ]);
    assert.equal(r.code, 0, dump(r));
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(doc.reasonCode, 4);
    assert.equal(doc.alreadyRevoked, false);
    const s = await status(serial);
    assert.equal(s.Status, "Revoked", JSON.stringify(s));
    assert.equal(s.Reason, 4, JSON.stringify(s));
  });

  it("--with-cert-key works for a home without any account (another home's copy of the cert)", async () => {
    const serial = await issue("revoke-c.example");
    // A second home holding only the certificate directory, no account at all.
    const other = join(tempDir("wile-e2e-revoke2-"), "wile");
    const { cpSync } = await import("node:fs");
    cpSync(join(home, "certs", "revoke-c.example"), join(other, "certs", "revoke-c.example"), {
      recursive: true,
      verbatimSymlinks: true,
    });
    const noKey = await runWile(["revoke", "revoke-c.example", "--yes"], { home: other });
    assert.equal(noKey.code, 2, dump(noKey));
    assert.match(noKey.stderr, /--with-cert-key/);
    const r = await runWile(
      ["revoke", "revoke-c.example", "--with-cert-key", "--reason", "cessationOfOperation", "--yes"],
      { home: other },
    );
    assert.equal(r.code, 0, dump(r));
    const s = await status(serial);
    assert.equal(s.Status, "Revoked");
    assert.equal(s.Reason, 5);
    assert.equal(existsSync(join(other, "accounts")), false, "no account was registered for it");
  });

  it("rejects a bad reason and an unknown name with exit 2", async () => {
    const bad = await wile(["revoke", "revoke-b.example", "--reason", "affiliationChanged", "--yes"]);
    assert.equal(bad.code, 2, dump(bad));
    assert.match(bad.stderr, /unspecified, keyCompromise, superseded, cessationOfOperation/);
    const none = await wile(["revoke", "nope.example", "--yes"]);
    assert.equal(none.code, 2, dump(none));
    assert.match(none.stderr, /no certificate named "nope\.example"/);
  });
});

describe("wile remove", () => {
  const listed = async () => {
    const r = await wile(["list", "--json"]);
    assert.equal(r.code, 0, dump(r));
    return (JSON.parse(r.stdout) as { certificates: Array<{ name: string }> }).certificates.map(
      (c) => c.name,
    );
  };

  it("refuses without --yes when stdin is not a terminal (exit 2, nothing moved)", async () => {
    await issue("remove-a.example");
    const r = await wile(["remove", "remove-a.example"]);
    assert.equal(r.code, 2, dump(r));
    assert.match(r.stderr, /--yes/);
    assert.ok(existsSync(certFiles(home, "remove-a.example").dir));
    assert.ok((await listed()).includes("remove-a.example"));
  });

  it("archives to <home>/removed/NAME-<stamp>/: list no longer shows it, files (and links) intact there", async () => {
    const before = readFileSync(certFiles(home, "remove-a.example").cert, "utf8");
    const r = await wile(["remove", "remove-a.example", "--yes", "--json"]);
    assert.equal(r.code, 0, dump(r));
    const doc = JSON.parse(r.stdout) as { archivedTo: string };
    assert.ok(!existsSync(certFiles(home, "remove-a.example").dir), "certs/remove-a.example is gone");
    assert.ok(!(await listed()).includes("remove-a.example"), "list no longer shows it");
    assert.match(doc.archivedTo, /\/removed\/remove-a\.example-\d{8}T\d{6}Z$/);
    const entries = readdirSync(join(home, "removed"));
    assert.deepEqual(entries, [doc.archivedTo.split("/").pop()]);
    assert.equal(
      readFileSync(join(doc.archivedTo, "cert.pem"), "utf8"),
      before,
      "stable links still resolve",
    );
    assert.ok(lstatSync(join(doc.archivedTo, "privkey.pem")).isSymbolicLink());
    assert.ok(existsSync(join(doc.archivedTo, "renewal.json")));
    assert.equal(lstatSync(join(home, "removed")).mode & 0o777, 0o700);
    // The name is free again: a new issue works.
    await issue("remove-a.example");
  });

  it("--purge deletes the directory and leaves nothing behind", async () => {
    await issue("remove-b.example");
    const r = await wile(["remove", "remove-b.example", "--purge", "--yes"]);
    assert.equal(r.code, 0, dump(r));
    assert.ok(!existsSync(certFiles(home, "remove-b.example").dir));
    assert.ok(!(await listed()).includes("remove-b.example"));
    assert.deepEqual(
      readdirSync(join(home, "removed")).filter((e) => e.includes("remove-b")),
      [],
      "nothing kept with --purge",
    );
  });

  it("an unknown name is exit 2", async () => {
    const r = await wile(["remove", "nope.example", "--yes"]);
    assert.equal(r.code, 2, dump(r));
  });
});
