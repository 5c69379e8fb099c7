import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { type AccountRecord, AccountStore } from "../../../src/store/accounts";
import { UsageError, WileError } from "../../../src/util/errors";

const LE = "https://acme-v02.api.letsencrypt.org/directory";
const record: AccountRecord = {
  url: "https://acme-v02.api.letsencrypt.org/acme/acct/1",
  directoryUrl: LE,
  contact: ["mailto:a@example.com"],
  createdAt: "2026-01-01T00:00:00.000Z",
  keyType: "ec-256",
};

describe("AccountStore", () => {
  test("keeps accounts per CA and name; the key is 0600 under a 0700 tree", async () => {
    const home = join(await mkdtemp(join(tmpdir(), "wile-acct-")), "home");
    const store = new AccountStore(home);
    assert.equal(store.dir(LE), join(home, "accounts", "acme-v02.api.letsencrypt.org_443", "default"));
    assert.equal(await store.readKey(LE), null);
    await store.writeKey(LE, "PEM\n");
    assert.equal(await store.readKey(LE), "PEM\n");
    assert.equal((await stat(join(store.dir(LE), "account.key"))).mode & 0o777, 0o600);
    for (const d of [home, join(home, "accounts"), store.dir(LE)])
      assert.equal((await stat(d)).mode & 0o777, 0o700);
    assert.equal(await store.readKey(LE, "work"), null);
  });

  test("refuses to overwrite an existing account key", async () => {
    const store = new AccountStore(await mkdtemp(join(tmpdir(), "wile-acct-")));
    await store.writeKey(LE, "first");
    await assert.rejects(store.writeKey(LE, "second"), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(e.message, /already exists.*account\.key/);
      assert.ok(e.hint);
      return true;
    });
    assert.equal(await store.readKey(LE), "first");
  });

  test("record round trip, with eabKid", async () => {
    const store = new AccountStore(await mkdtemp(join(tmpdir(), "wile-acct-")));
    assert.equal(await store.readRecord(LE), null);
    await store.writeRecord(LE, { ...record, eabKid: "kid-1" });
    assert.deepEqual(await store.readRecord(LE), { ...record, eabKid: "kid-1" });
  });

  test("a corrupt account.json is an error naming the file and the fix", async () => {
    const store = new AccountStore(await mkdtemp(join(tmpdir(), "wile-acct-")));
    await store.writeRecord(LE, record);
    const file = join(store.dir(LE), "account.json");
    for (const text of ["{not json", "[]", JSON.stringify({ ...record, contact: "x" })]) {
      await writeFile(file, text);
      await assert.rejects(store.readRecord(LE), (e: unknown) => {
        assert.ok(e instanceof WileError);
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.hint ?? "", /account\.json/);
        return true;
      });
    }
    assert.ok((await readFile(file, "utf8")).length > 0);
  });

  test("rollover files: the pending key is 0600; promoting it keeps the old key as a hard link", async () => {
    const store = new AccountStore(await mkdtemp(join(tmpdir(), "wile-acct-")));
    await store.writeKey(LE, "OLD\n", "work");
    assert.equal(await store.readPendingKey(LE, "work"), null);
    await store.writePendingKey(LE, "NEXT\n", "work");
    assert.equal(await store.readPendingKey(LE, "work"), "NEXT\n");
    assert.equal((await stat(store.pendingKeyFile(LE, "work"))).mode & 0o777, 0o600);
    const keyBefore = await stat(store.keyFile(LE, "work"));

    const now = new Date("2026-03-04T05:06:07.890Z");
    const old = await store.promotePendingKey(LE, now, "work");
    assert.equal(old, join(store.dir(LE, "work"), "account.key.old-20260304T050607Z"));
    assert.equal((await stat(old)).ino, keyBefore.ino, "the old key file itself, linked");
    assert.equal(await readFile(old, "utf8"), "OLD\n");
    assert.equal(await store.readKey(LE, "work"), "NEXT\n");
    assert.equal(await store.readPendingKey(LE, "work"), null);

    // A second rollover in the same second gets a numbered name, never overwrites a kept key.
    await store.writePendingKey(LE, "THIRD\n", "work");
    const old2 = await store.promotePendingKey(LE, now, "work");
    assert.equal(old2, `${old}-2`);
    assert.equal(await readFile(old, "utf8"), "OLD\n");
    assert.equal(await readFile(old2, "utf8"), "NEXT\n");
    assert.equal(await store.readKey(LE, "work"), "THIRD\n");
  });

  test("dropping a pending key leaves the account key; dropping none is no error", async () => {
    const store = new AccountStore(await mkdtemp(join(tmpdir(), "wile-acct-")));
    await store.writeKey(LE, "KEY\n");
    await store.dropPendingKey(LE);
    await store.writePendingKey(LE, "NEXT\n");
    await store.dropPendingKey(LE);
    assert.equal(await store.readPendingKey(LE), null);
    assert.deepEqual(await readdir(store.dir(LE)), ["account.key"]);
  });

  test("a deactivated account's directory moves aside whole", async () => {
    const store = new AccountStore(await mkdtemp(join(tmpdir(), "wile-acct-")));
    await store.writeKey(LE, "KEY\n");
    await store.writeRecord(LE, record);
    const moved = await store.moveDeactivated(LE, new Date("2026-03-04T05:06:07Z"));
    assert.equal(moved, `${store.dir(LE)}.deactivated-20260304T050607Z`);
    assert.equal(moved, store.deactivatedDir(LE, "20260304T050607Z"));
    assert.equal(await store.readKey(LE), null);
    assert.equal(await store.readRecord(LE), null);
    assert.deepEqual((await readdir(moved)).sort(), ["account.json", "account.key"]);
  });

  test("an account name that is not a single path component is a usage error", () => {
    const store = new AccountStore("/h");
    assert.throws(() => store.dir(LE, "../x"), UsageError);
  });
});
