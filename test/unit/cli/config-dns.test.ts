/**
 * `wile config --dns-credential PROVIDER.SETTING` (value from stdin) and `--unset dns.…`: what an
 * operator types, what config.json then holds (0600), and that a secret is never shown.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { dnsSettingOf, readCredential, shownDnsConfig } from "../../../src/cli/commands/config";
import { updateConfig } from "../../../src/store/config";
import { UsageError } from "../../../src/util/errors";
import { runMainCaptured } from "../../helpers/run-main";

const base = mkdtempSync(join(tmpdir(), "wile-unit-config-dns-"));
after(() => rmSync(base, { recursive: true, force: true }));

const SECRET = Buffer.alloc(32, 9).toString("base64");

const wile = (home: string, args: string[]) => runMainCaptured(["config", "--home", home, ...args]);

describe("wile config: DNS credentials", () => {
  test("the value comes from stdin: one line, the final newline dropped", async () => {
    assert.equal(await readCredential("rfc2136.tsigSecret", Readable.from([`${SECRET}\n`])), SECRET);
    assert.equal(await readCredential("x.y", Readable.from(["a b\r\n"])), "a b");
    for (const bad of ["", "\n", "two\nlines\n"]) {
      await assert.rejects(readCredential("x.y", Readable.from([bad])), UsageError);
    }
  });

  test("PROVIDER.SETTING is checked against the declarations", () => {
    assert.equal(dnsSettingOf("rfc2136.tsigSecret", "--dns-credential").setting.secret, true);
    assert.throws(() => dnsSettingOf("nope.token", "--dns-credential"), /DNS provider this wile knows/);
    assert.throws(() => dnsSettingOf("rfc2136.token", "--dns-credential"), /has no setting "token".*/);
    assert.throws(() => dnsSettingOf("rfc2136", "--dns-credential"), /has no setting ""/);
  });

  test("shown: secrets and unknown providers' values hidden, the rest as is", () => {
    assert.deepEqual(
      shownDnsConfig({ rfc2136: { tsigSecret: SECRET, tsigName: "k" }, future: { token: "t" } }),
      {
        rfc2136: { tsigSecret: "(set, not shown)", tsigName: "k" },
        future: { token: "(set, not shown)" },
      },
    );
  });

  test("listed without values, unset one setting or a whole provider; the file stays 0600", async () => {
    const home = join(base, "h1");
    await updateConfig(home, {
      dns: { rfc2136: { tsigSecret: SECRET, tsigName: "k" }, future: { token: "t" } },
    });
    assert.equal(statSync(join(home, "config.json")).mode & 0o777, 0o600);
    const shown = await wile(home, []);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /dns\.rfc2136\.tsigSecret\s+\(set, not shown\)/);
    assert.match(shown.stdout, /dns\.rfc2136\.tsigName\s+k/);
    assert.match(
      shown.stdout,
      /dns\.future\.token\s+\(set, not shown\)\s+\(a DNS provider this wile does not know/,
    );
    const json = await wile(home, ["--json"]);
    assert.ok(!`${shown.stdout}${json.stdout}`.includes(SECRET));
    assert.equal((await wile(home, ["--unset", "dns.rfc2136.tsigSecret"])).code, 0);
    assert.deepEqual(JSON.parse(readFileSync(join(home, "config.json"), "utf8")).dns, {
      rfc2136: { tsigName: "k" },
      future: { token: "t" },
    });
    assert.equal((await wile(home, ["--unset", "dns.future"])).code, 0);
    assert.equal((await wile(home, ["--unset", "dns.rfc2136.tsigName"])).code, 0);
    assert.equal(JSON.parse(readFileSync(join(home, "config.json"), "utf8")).dns, undefined);
    const notSet = await wile(home, ["--unset", "dns.rfc2136.tsigName"]);
    assert.equal(notSet.code, 2);
    assert.match(notSet.stderr, /not set/);
  });
});
