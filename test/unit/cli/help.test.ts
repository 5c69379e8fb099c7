import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { targetOptions } from "../../../src/cli/deploy-options";
import { TARGET_KINDS } from "../../../src/deploy/registry";
import { runMainCaptured } from "../../helpers/run-main";

const run = (argv: string[]) => runMainCaptured(argv);

describe("help", () => {
  test("every command has --help with usage and examples", async () => {
    const general = await run(["help"]);
    const names = [...general.stdout.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1] as string);
    assert.ok(names.length >= 14, general.stdout);
    for (const name of names) {
      const r = await run([name, "--help"]);
      assert.equal(r.code, 0, name);
      assert.match(r.stdout, new RegExp(`^Usage: wile ${name}`), name);
      assert.match(r.stdout, /\nExamples:\n {2}wile /, name);
    }
  });

  test("each deploy target has its own help: wile deploy KIND --help", async () => {
    for (const kind of TARGET_KINDS) {
      const r = await run(["deploy", kind.kind, "--help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`--deploy ${kind.kind} \\[options\\]`));
      for (const o of targetOptions(kind))
        assert.ok(r.stdout.includes(`--${o.name}`), `${kind.kind}: --${o.name}`);
    }
    const unknown = await run(["deploy", "teleport", "--help"]);
    assert.match(unknown.stdout, /^Usage: wile deploy NAME/, "an unknown topic shows the command's help");
  });

  test("issue, renew and cron state the default deadline of --timeout; a bad value is a usage error", async () => {
    for (const name of ["issue", "renew", "cron"]) {
      const r = await run([name, "--help"]);
      assert.match(
        r.stdout.replace(/\s+/g, " "),
        /--timeout SECONDS give up on a certificate after SECONDS.*\(default 300\)/,
        name,
      );
    }
    const home = mkdtempSync(join(tmpdir(), "wile-help-"));
    for (const bad of ["0", "-5", "1.5", "soon", "86401"]) {
      const r = await run(["cron", "--home", home, "--timeout", bad]);
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /--timeout ".*" is not a whole number of seconds from 1 to 86400/);
    }
    rmSync(home, { recursive: true, force: true });
  });
});
