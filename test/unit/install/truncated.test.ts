import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../../helpers/wile";

test("install.sh cut short by the network runs nothing (curl | sh of a partial download)", () => {
  const script = readFileSync(join(repoRoot, "install.sh"), "utf8");
  for (const fraction of [0.1, 0.5, 0.9, 0.99]) {
    const partial = script.slice(0, Math.floor(script.length * fraction));
    for (const shell of ["sh", "bash"]) {
      const r = spawnSync(shell, ["-s", "--", "--help"], { input: partial, encoding: "utf8" });
      assert.doesNotMatch(r.stdout + r.stderr, /wile-install:|Installs wile/, `${shell} executed part of it`);
    }
  }
});
