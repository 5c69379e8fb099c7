import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { type DnsRecord, readProviderSettings } from "../../../src/dns/provider";
import { execProvider } from "../../../src/dns/providers/exec";
import { dnsProvider } from "../../../src/dns/registry";
import { WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { SettingError } from "../../../src/util/settings";

const dir = mkdtempSync(join(tmpdir(), "wile-unit-dns-exec-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A real hook: appends its arguments, one line per call, tab-separated, to a file; exits as told. */
function hook(name: string, body = ""): { path: string; calls: () => string[][] } {
  const log = join(dir, `${name}.log`);
  const path = join(dir, `${name}.sh`);
  writeFileSync(
    path,
    `#!/bin/sh\n(IFS="$(printf '\\t')"; printf '%s\\n' "$*") >> '${log}'\n${body}\nexit 0\n`,
  );
  chmodSync(path, 0o755);
  return {
    path,
    calls: () => {
      try {
        return readFileSync(log, "utf8")
          .trimEnd()
          .split("\n")
          .map((l) => l.split("\t"));
      } catch {
        return [];
      }
    },
  };
}

const record: DnsRecord = {
  fqdn: "_acme-challenge.example.com",
  value: "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
  identifier: "example.com",
  token: "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
};

function provider(given: Record<string, unknown>, env: Record<string, string> = {}) {
  const { values } = readProviderSettings(execProvider, given, { env }, (k) => k);
  return execProvider.create(values as never, {
    logger: silentLogger,
    env: { PATH: process.env.PATH, ...env },
  });
}

describe("dns provider exec", () => {
  test("is registered as --dns exec", () => {
    assert.equal(dnsProvider("exec"), execProvider);
  });

  test("lego's protocol: CMD present|cleanup FQDN. VALUE", async () => {
    const h = hook("lego");
    const p = provider({ command: h.path });
    await p.present(record);
    await p.cleanup(record);
    assert.deepEqual(h.calls(), [
      ["present", "_acme-challenge.example.com.", record.value],
      ["cleanup", "_acme-challenge.example.com.", record.value],
    ]);
    assert.equal(p.describe(), `exec (${h.path})`);
  });

  test("uacme's hook: CMD begin|done dns-01 IDENT TOKEN AUTH, AUTH being the TXT value", async () => {
    const h = hook("uacme");
    const p = provider({ command: h.path, mode: "uacme" });
    await p.present(record);
    await p.cleanup(record);
    assert.deepEqual(h.calls(), [
      ["begin", "dns-01", "example.com", record.token, record.value],
      ["done", "dns-01", "example.com", record.token, record.value],
    ]);
  });

  test("the command is a shell string with its own arguments; wile's are appended, never spliced in", async () => {
    const h = hook("args");
    const p = provider({ command: `${h.path} --zone 'my zone'` });
    await p.present({ ...record, value: `$(touch ${join(dir, "pwned")});x` });
    assert.equal(existsSync(join(dir, "pwned")), false);
    assert.deepEqual(h.calls(), [
      ["--zone", "my zone", "present", "_acme-challenge.example.com.", `$(touch ${join(dir, "pwned")});x`],
    ]);
  });

  test("a failing hook: the error quotes its output and names the command and the step", async () => {
    const h = hook(
      "fail",
      'echo "adding to zone example.com" ; echo "REFUSED: not authoritative" >&2 ; exit 3',
    );
    const p = provider({ command: h.path });
    const err = await p.present(record).then(
      () => assert.fail("present should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WileError);
    assert.match(
      err.message,
      /the DNS hook \(.*fail\.sh present _acme-challenge\.example\.com\.\) failed \(exit 3\)/,
    );
    assert.match(err.message, /REFUSED: not authoritative/);
    assert.match(err.message, /adding to zone example\.com/);
    assert.match(err.hint ?? "", /present FQDN\. VALUE/);

    const u = provider({ command: h.path, mode: "uacme" });
    const declined = await u.cleanup(record).then(
      () => assert.fail("cleanup should fail"),
      (e: unknown) => e as WileError,
    );
    assert.match(declined.message, /fail\.sh done dns-01 example\.com\) failed \(exit 3\)/);
    assert.match(declined.hint ?? "", /Remove the TXT value .* at _acme-challenge\.example\.com by hand/);
  });

  test("a hook that hangs is killed after --dns-exec-timeout", async () => {
    const h = hook("hang", "sleep 30");
    const p = provider({ command: h.path, timeout: "1" });
    const started = Date.now();
    await assert.rejects(p.present(record), /failed \(timed out after 1 s\)/);
    const took = Date.now() - started;
    assert.ok(took >= 1000 && took < 5000, `took ${took} ms`);
  });

  test("a command that cannot run says so", async () => {
    const p = provider({ command: join(dir, "missing-hook") });
    await assert.rejects(p.present(record), /failed \(exit 127\): .*missing-hook/);
  });

  test("settings: the command from lego's EXEC_PATH, a bad mode or timeout refused, stored form", () => {
    const name = (k: string) => `--${k}`;
    const fromEnv = readProviderSettings(execProvider, {}, { env: { EXEC_PATH: "/bin/hook" } }, name);
    assert.deepEqual(fromEnv.stored, { provider: "exec", command: "/bin/hook" });
    assert.deepEqual(fromEnv.values, { command: "/bin/hook", mode: "lego", timeout: 120 });
    const given = readProviderSettings(
      execProvider,
      { command: "/bin/mine", mode: "uacme", timeout: "30" },
      { env: { EXEC_PATH: "/bin/hook" } },
      name,
    );
    assert.deepEqual(given.stored, { provider: "exec", command: "/bin/mine", mode: "uacme", timeout: 30 });
    assert.throws(
      () => readProviderSettings(execProvider, {}, {}, name),
      (e: unknown) => e instanceof SettingError && e.key === "command" && e.message === "is missing",
    );
    assert.throws(
      () => readProviderSettings(execProvider, { command: "x", mode: "certbot" }, {}, name),
      (e: unknown) => e instanceof SettingError && e.key === "mode" && /lego or uacme/.test(e.message),
    );
    assert.throws(
      () => readProviderSettings(execProvider, { command: "x", timeout: "0" }, {}, name),
      (e: unknown) => e instanceof SettingError && e.key === "timeout",
    );
  });
});
