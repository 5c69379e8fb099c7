import assert from "node:assert/strict";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { configPatchFromOptions, NOTIFY_OPTIONS } from "../../../src/cli/commands/config";
import { parseOptions } from "../../../src/cli/options";
import { configPath, parseConfig, readConfig, updateConfig, writeConfig } from "../../../src/store/config";
import { UsageError } from "../../../src/util/errors";

const tmp = () => mkdtemp(join(tmpdir(), "wile-config-"));

describe("home config", () => {
  test("a missing file gives the defaults", async () => {
    const home = join(await tmp(), "nothing-here");
    assert.deepEqual(await readConfig(home), { version: 1, notifyOn: "failure" });
  });

  test("write then read round-trips; the file is 0600 and the home 0700 whatever the umask", async () => {
    const home = join(await tmp(), "h");
    const saved = process.umask(0);
    try {
      await writeConfig(home, {
        version: 1,
        email: ["ops@example.com"],
        notifyCmd: "mail -s wile root",
        notifyUrl: "https://hooks.example.com/x",
        notifyOn: "always",
        heartbeatUrl: "http://hc.example.com/ping/abc",
        cron: { minute: 7, hours: [3, 15] },
      });
    } finally {
      process.umask(saved);
    }
    assert.equal((await stat(configPath(home))).mode & 0o777, 0o600);
    assert.equal((await stat(home)).mode & 0o777, 0o700);
    const cfg = await readConfig(home);
    assert.equal(cfg.notifyOn, "always");
    assert.deepEqual(cfg.cron, { minute: 7, hours: [3, 15] });
    assert.deepEqual(cfg.email, ["ops@example.com"]);
    assert.equal(cfg.heartbeatUrl, "http://hc.example.com/ping/abc");
  });

  test("updateConfig merges, and a key patched to undefined is removed", async () => {
    const home = await tmp();
    await updateConfig(home, { notifyUrl: "https://a.example/", heartbeatUrl: "https://b.example/" });
    const next = await updateConfig(home, { notifyUrl: undefined, notifyOn: "always" });
    assert.equal(next.notifyUrl, undefined);
    assert.equal(next.heartbeatUrl, "https://b.example/");
    assert.equal(next.notifyOn, "always");
    const onDisk = JSON.parse(await readFile(configPath(home), "utf8"));
    assert.equal("notifyUrl" in onDisk, false);
    assert.deepEqual(await readConfig(home), next);
  });

  test("corrupt JSON is a UsageError naming the file and the fix", async () => {
    const home = await tmp();
    await writeFile(configPath(home), "{ not json");
    await assert.rejects(readConfig(home), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.exitCode, 2);
      assert.ok(e.message.includes(configPath(home)), e.message);
      assert.match(e.message, /not valid JSON/);
      assert.match(e.hint ?? "", /delete it/);
      return true;
    });
  });

  test("wrong types are refused with the field named", () => {
    const bad: Array<[unknown, RegExp]> = [
      [[], /not a JSON object/],
      [{ version: 2 }, /version/],
      [{ version: 1, notifyOn: "sometimes" }, /notifyOn/],
      [{ version: 1, notifyUrl: "ftp://x.example/" }, /notifyUrl/],
      [{ version: 1, heartbeatUrl: "" }, /heartbeatUrl/],
      [{ version: 1, email: "a@b" }, /email/],
      [{ version: 1, cron: { minute: 60, hours: [1, 13] } }, /cron/],
      [{ version: 1, cron: { minute: 5, hours: [1] } }, /cron/],
    ];
    for (const [raw, re] of bad) assert.throws(() => parseConfig(raw), re, JSON.stringify(raw));
  });

  test("unknown keys from a newer wile are dropped, not fatal", () => {
    assert.deepEqual(parseConfig({ version: 1, future: true }), { version: 1, notifyOn: "failure" });
  });

  test("updateConfig refuses an invalid value and leaves the file alone", async () => {
    const home = await tmp();
    await updateConfig(home, { notifyUrl: "https://ok.example/" });
    const before = await readFile(configPath(home), "utf8");
    await assert.rejects(updateConfig(home, { notifyUrl: "not a url" }), /notifyUrl/);
    assert.equal(await readFile(configPath(home), "utf8"), before);
  });
});

describe("notification options (wile config, wile cron)", () => {
  test("configPatchFromOptions maps and checks the options", () => {
    const opts = parseOptions(
      [
        "--notify-cmd",
        "mail root",
        "--notify-url",
        "https://h.example/x",
        "--notify-on",
        "always",
        "--heartbeat-url",
        "http://hc.example/p",
      ],
      NOTIFY_OPTIONS,
    );
    assert.deepEqual(configPatchFromOptions(opts), {
      notifyCmd: "mail root",
      notifyUrl: "https://h.example/x",
      notifyOn: "always",
      heartbeatUrl: "http://hc.example/p",
    });
    assert.deepEqual(configPatchFromOptions(parseOptions([], NOTIFY_OPTIONS)), {});
    assert.throws(
      () => configPatchFromOptions(parseOptions(["--notify-url", "file:///etc/passwd"], NOTIFY_OPTIONS)),
      UsageError,
    );
    assert.throws(
      () => configPatchFromOptions(parseOptions(["--notify-on", "never"], NOTIFY_OPTIONS)),
      /failure" or "always/,
    );
  });
});

describe("config.json's dns section", () => {
  test("provider -> settings; names this wile does not know are kept", () => {
    const cfg = parseConfig({
      version: 1,
      dns: { rfc2136: { tsigSecret: "c2VjcmV0", timeout: 5 }, "future-dns": { token: "t", zones: ["a"] } },
    });
    assert.deepEqual(cfg.dns, {
      rfc2136: { tsigSecret: "c2VjcmV0", timeout: 5 },
      "future-dns": { token: "t", zones: ["a"] },
    });
  });

  test("anything else is refused, naming the field and never quoting a value", () => {
    for (const dns of [
      [],
      "x",
      { rfc2136: "secret-value" },
      { rfc2136: { tsigSecret: { nested: "secret-value" } } },
    ]) {
      assert.throws(
        () => parseConfig({ version: 1, dns }),
        (e: unknown) =>
          e instanceof UsageError && /"dns/.test(e.message) && !e.message.includes("secret-value"),
      );
    }
  });
});
