/**
 * End to end against a real Pebble: `wile account show | register | update | rollover |
 * deactivate`. Rollover: the new key finds the same account URL, the old key (a copy in a second
 * home) finds none. Deactivation: the next issue registers a new account with a new URL.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;
let caArgs: string[];
let accountDir: string;

before(async () => {
  env = await startTestEnv();
  home = join(tempDir("wile-e2e-account-"), "wile");
  caArgs = ["--server", env.directoryUrl, "--ca-bundle", env.caBundle];
  accountDir = join(home, "accounts", `127.0.0.1_${new URL(env.directoryUrl).port}`, "default");
});

after(async () => {
  await env?.stop();
});

const wile = (args: string[], h = home) => runWile(args, { home: h, timeoutMs: 60_000 });
const recordUrl = (dir = accountDir) =>
  (JSON.parse(readFileSync(join(dir, "account.json"), "utf8")) as { url: string }).url;

/** A second home holding only a copy of `keyPem` as its account key (no account.json). */
function homeWithKey(keyPem: string): string {
  const h = join(tempDir("wile-e2e-account-copy-"), "wile");
  const dir = join(h, "accounts", `127.0.0.1_${new URL(env.directoryUrl).port}`, "default");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "account.key"), keyPem, { mode: 0o600 });
  return h;
}

describe("wile account against Pebble", () => {
  it("show without an account says how to register (exit 1, nothing created)", async () => {
    const r = await wile(["account", "show", ...caArgs]);
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /wile account register/);
    assert.equal(existsSync(join(home, "accounts")), false);
  });

  it("register creates the account without issuing; show prints URL, status, contact, thumbprint", async () => {
    const r = await wile(["account", "register", "--email", "first@account.example", ...caArgs]);
    assert.equal(r.code, 0, dump(r));
    const url = r.stdout.trim();
    assert.match(url, /^https:\/\/.+\/my-account\/\w+$/);
    assert.equal(recordUrl(), url);
    assert.equal(existsSync(join(home, "certs")), false, "nothing issued");

    const again = await wile(["account", "register", ...caArgs]);
    assert.equal(again.code, 0, dump(again));
    assert.equal(again.stdout.trim(), url, "a second register finds the same account");

    const show = await wile(["account", "show", ...caArgs]);
    assert.equal(show.code, 0, dump(show));
    assert.match(show.stdout, new RegExp(`URL: +${url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    assert.match(show.stdout, /Status: +valid/);
    assert.match(show.stdout, /Contact: +mailto:first@account\.example/);
    assert.match(show.stdout, /thumbprint [A-Za-z0-9_-]{43}/);
  });

  it("update --email replaces the contact at the CA and in account.json", async () => {
    const r = await wile(["account", "update", "--email", "second@account.example", ...caArgs]);
    assert.equal(r.code, 0, dump(r));
    const show = await wile(["account", "show", "--json", ...caArgs]);
    assert.equal(show.code, 0, dump(show));
    const doc = JSON.parse(show.stdout) as { contact: string[]; status: string };
    assert.deepEqual(doc.contact, ["mailto:second@account.example"]);
    const rec = JSON.parse(readFileSync(join(accountDir, "account.json"), "utf8")) as { contact: string[] };
    assert.deepEqual(rec.contact, ["second@account.example"]);

    const none = await wile(["account", "update", ...caArgs]);
    assert.equal(none.code, 2, dump(none));
    assert.match(none.stderr, /--email/);
  });

  it("rollover: same account URL with the new key; the old key no longer finds it", async () => {
    const url = recordUrl();
    const oldPem = readFileSync(join(accountDir, "account.key"), "utf8");
    const before = await wile(["account", "show", "--json", ...caArgs]);
    const oldThumb = (JSON.parse(before.stdout) as { thumbprint: string }).thumbprint;

    const r = await wile(["account", "rollover", "--json", ...caArgs]);
    assert.equal(r.code, 0, dump(r));
    const doc = JSON.parse(r.stdout) as { url: string; thumbprint: string; oldThumbprint: string };
    assert.equal(doc.url, url);
    assert.equal(doc.oldThumbprint, oldThumb);
    assert.notEqual(doc.thumbprint, oldThumb);

    const newPem = readFileSync(join(accountDir, "account.key"), "utf8");
    assert.notEqual(newPem, oldPem, "account.key holds the new key");
    const files = readdirSync(accountDir);
    const backups = files.filter((f) => f.startsWith("account.key.old-"));
    assert.equal(backups.length, 1, files.join(", "));
    assert.equal(
      readFileSync(join(accountDir, backups[0] as string), "utf8"),
      oldPem,
      "old key kept as a backup",
    );
    assert.ok(!files.some((f) => f.includes(".next") || f.includes(".tmp-")), files.join(", "));
    assert.equal(recordUrl(), url, "account.json keeps the URL");

    // The new key finds the same account by onlyReturnExisting (show looks the key up).
    const show = await wile(["account", "show", "--json", ...caArgs]);
    assert.equal(show.code, 0, dump(show));
    const s = JSON.parse(show.stdout) as { url: string; thumbprint: string };
    assert.equal(s.url, url);
    assert.equal(s.thumbprint, doc.thumbprint);

    // The old key, alone in another home, finds no account.
    const oldHome = homeWithKey(oldPem);
    const stale = await wile(["account", "show", ...caArgs], oldHome);
    assert.equal(stale.code, 1, dump(stale));
    assert.match(stale.stderr, /knows no account for the key/);

    // And the account still orders certificates with the new key.
    const issued = await wile(issueArgs(env, ["rollover.example"]));
    assert.equal(issued.code, 0, dump(issued));
    assert.equal(recordUrl(), url);
  });

  it("deactivate needs --yes without a terminal (exit 2, account untouched)", async () => {
    const r = await wile(["account", "deactivate", ...caArgs]);
    assert.equal(r.code, 2, dump(r));
    assert.match(r.stderr, /--yes/);
    assert.match(r.stderr, /permanent/);
    assert.ok(existsSync(join(accountDir, "account.key")));
    const show = await wile(["account", "show", ...caArgs]);
    assert.match(show.stdout, /Status: +valid/, dump(show));
  });

  it("deactivate --yes: the account is gone for good; the next issue registers a new account", async () => {
    const url = recordUrl();
    const keyPem = readFileSync(join(accountDir, "account.key"), "utf8");
    const r = await wile(["account", "deactivate", "--yes", ...caArgs]);
    assert.equal(r.code, 0, dump(r));
    assert.equal(existsSync(accountDir), false, "the account directory was moved away");
    const parent = join(accountDir, "..");
    const moved = readdirSync(parent).filter((e) => /^default\.deactivated-\d{8}T\d{6}Z$/.test(e));
    assert.equal(moved.length, 1, readdirSync(parent).join(", "));
    assert.equal(readFileSync(join(parent, moved[0] as string, "account.key"), "utf8"), keyPem, "key kept");

    // The CA refuses the deactivated key.
    const stale = await wile(["account", "show", ...caArgs], homeWithKey(keyPem));
    assert.equal(stale.code, 1, dump(stale));
    assert.match(stale.stderr, /deactivated/i);

    // wile itself no longer has an account there...
    const show = await wile(["account", "show", ...caArgs]);
    assert.equal(show.code, 1, dump(show));
    // ...and the next issue registers a new one, with a new URL.
    const issued = await wile(issueArgs(env, ["after-deactivate.example"]));
    assert.equal(issued.code, 0, dump(issued));
    assert.match(issued.stderr, /Registered account/);
    assert.notEqual(recordUrl(), url);
  });

  it("rejects unknown actions and misplaced options with exit 2", async () => {
    for (const args of [
      ["account"],
      ["account", "frobnicate"],
      ["account", "show", "--email", "a@b.example"],
    ]) {
      const r = await wile([...args, ...caArgs]);
      assert.equal(r.code, 2, dump(r));
    }
  });
});
