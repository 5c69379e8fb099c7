import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { allProviderOptions, dnsConfigsFromOptions } from "../../../src/cli/dns-options";
import { parseOptions } from "../../../src/cli/options";
import { runMain } from "../../../src/main";

const home = mkdtempSync(join(tmpdir(), "wile-unit-dns-cli-"));
after(() => rmSync(home, { recursive: true, force: true }));

/** wile issue with a bad command line: exit 2 before anything is contacted (no CA is reachable here). */
async function issue(args: string[], env: Record<string, string> = {}) {
  let stderr = "";
  const code = await runMain(
    ["issue", "--home", home, "--server", "https://127.0.0.1:9/dir", ...args],
    { NO_COLOR: "1", ...env },
    {
      stdout: { write: () => {} },
      stderr: { write: (s: string) => (stderr += s) },
      stderrIsTTY: false,
      stdoutIsTTY: false,
    },
  );
  return { code, stderr };
}

describe("wile issue --dns: usage errors before anything is contacted", () => {
  test("a wildcard with a webroot points at --dns", async () => {
    const r = await issue(["-d", "*.example.com", "-w", home]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\*\.example\.com is a wildcard name; CAs validate wildcards only with DNS-01/);
    assert.match(r.stderr, /--dns exec --dns-exec/);
  });

  test("an unknown provider, a provider's flag without it, a provider without its settings", async () => {
    let r = await issue(["-d", "example.com", "--dns", "nsone"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown --dns provider "nsone"/);
    r = await issue(["-d", "example.com", "-w", home, "--dns-exec", "/bin/hook"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dns-exec belongs to the exec DNS provider, but no name uses --dns exec/);
    r = await issue(["-d", "example.com", "--dns", "exec"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dns exec needs --dns-exec CMD/);
    r = await issue([
      "-d",
      "example.com",
      "--dns",
      "exec",
      "--dns-exec",
      "/bin/hook",
      "--dns-exec-mode",
      "acme.sh",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dns-exec-mode "acme\.sh": must be lego or uacme/);
  });

  test("a name with neither -w nor --dns", async () => {
    const r = await issue(["-d", "example.com"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no webroot or DNS provider for example\.com/);
  });
});

describe("renewal.json entries from --dns flags", () => {
  test("one entry per provider used, from its flags or lego's EXEC_PATH", () => {
    const opts = parseOptions(
      ["--dns-exec", "/bin/hook x", "--dns-exec-mode", "uacme"],
      allProviderOptions(),
    );
    assert.deepEqual(Object.fromEntries(dnsConfigsFromOptions(opts, ["exec", "exec"], {})), {
      exec: { provider: "exec", command: "/bin/hook x", mode: "uacme" },
    });
    const bare = parseOptions([], allProviderOptions());
    assert.deepEqual(
      Object.fromEntries(dnsConfigsFromOptions(bare, ["exec"], { EXEC_PATH: "/bin/lego-hook" })),
      {
        exec: { provider: "exec", command: "/bin/lego-hook" },
      },
    );
  });
});
