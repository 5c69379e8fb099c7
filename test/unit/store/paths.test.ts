import assert from "node:assert/strict";
import { homedir } from "node:os";
import { describe, test } from "node:test";
import { caDirName, certName, homeLayout, resolveHome } from "../../../src/store/paths";
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
    assert.equal(certName("*.example.com"), "_wildcard_.example.com");
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
