import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  caDirName,
  certName,
  checkHome,
  homeLayout,
  MAX_CERT_NAME,
  resolveHome,
} from "../../../src/store/paths";
import { UsageError } from "../../../src/util/errors";

describe("paths", () => {
  test("resolveHome: --home, then WILE_HOME, then HOME/.wile, always absolute", () => {
    assert.equal(resolveHome("/srv/w", { WILE_HOME: "/x", HOME: "/h" }), "/srv/w");
    assert.equal(resolveHome(undefined, { WILE_HOME: "/x", HOME: "/h" }), "/x");
    assert.equal(resolveHome(undefined, { HOME: "/h" }), "/h/.wile");
    assert.equal(resolveHome(undefined, {}), `${homedir()}/.wile`);
    assert.equal(resolveHome("rel", {}), `${process.cwd()}/rel`);
  });

  test("caDirName fills in the default port and keeps only file-name-safe characters", () => {
    assert.equal(
      caDirName("https://acme-v02.api.letsencrypt.org/directory"),
      "acme-v02.api.letsencrypt.org_443",
    );
    assert.equal(caDirName("https://127.0.0.1:14000/dir"), "127.0.0.1_14000");
    assert.equal(caDirName("https://[::1]:14000/dir"), "--1_14000");
    assert.throws(() => caDirName("not a url"), UsageError);
  });

  test("certName maps a wildcard and rejects names that are not one path component", () => {
    assert.equal(certName("example.com"), "example.com");
    assert.equal(certName("*.example.com"), "_.example.com");
    for (const bad of ["", ".", "..", "a/b", "a\0b", "../etc"])
      assert.throws(() => certName(bad), UsageError, bad);
  });

  test("homeLayout", () => {
    assert.deepEqual(homeLayout("/h"), {
      home: "/h",
      accounts: "/h/accounts",
      certs: "/h/certs",
      logs: "/h/logs",
    });
  });
});

describe("checkHome (issue 10 finding 6)", () => {
  const base = mkdtempSync(join(tmpdir(), "wile-checkhome-"));
  after(() => rmSync(base, { recursive: true, force: true }));

  test("a file, or a file on the way, is a UsageError naming it", async () => {
    const file = join(base, "file");
    writeFileSync(file, "");
    for (const home of [file, join(file, "below")]) {
      await assert.rejects(
        checkHome(home, { write: false }),
        (e: unknown) => e instanceof UsageError && e.message.includes(`${file} is a file, not a directory`),
      );
    }
  });

  test("a missing home under a writable directory, or an existing one, is fine", async () => {
    await checkHome(join(base, "new", "deeper"), { write: true });
    await checkHome(base, { write: true });
  });
  // A home this user cannot write: test/e2e/home-mistakes.test.ts (as root, wile runs as nobody).
});

test("certName: a name longer than MAX_CERT_NAME is a UsageError saying which -d to shorten", () => {
  assert.equal(certName("a".repeat(MAX_CERT_NAME)), "a".repeat(MAX_CERT_NAME));
  assert.throws(
    () => certName(`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(40)}.example`),
    (e: unknown) =>
      e instanceof UsageError && /240-character/.test(e.message) && /first -d/.test(e.hint ?? ""),
  );
});
