/**
 * End to end: a run stopped by SIGTERM or Ctrl-C while the CA validates removes its challenge
 * files from the webroot and its lock, and leaves no certificate half-stored.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { filesUnder } from "../helpers/certs";
import { certFiles, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;

before(async () => {
  // Pebble's VA sleeps up to 15 s before validating unless PEBBLE_VA_NOSLEEP=1: room to interrupt.
  env = await startTestEnv({ env: { PEBBLE_VA_NOSLEEP: "0", PEBBLE_AUTHZREUSE: "0" } });
  home = join(tempDir("wile-e2e-int-"), "wile");
});

after(async () => {
  await env?.stop();
});

/** Runs wile, sending `signal` once stderr says validation began. */
function interruptDuringValidation(name: string, signal: NodeJS.Signals) {
  // Let the challenge POST reach the CA, then interrupt while polling.
  return runWile(issueArgs(env, [name]), { home, interrupt: { when: /Validating /, signal, afterMs: 150 } });
}

describe("interrupted issuance", () => {
  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130],
  ] as const) {
    it(`${signal} during validation cleans the webroot and the lock`, async () => {
      // The VA may pick a zero sleep and finish first; a few names make an interrupt certain.
      let r: Awaited<ReturnType<typeof interruptDuringValidation>> | undefined;
      let name = "";
      for (let i = 0; i < 4; i++) {
        name = `${signal.toLowerCase()}-${i}.example`;
        r = await interruptDuringValidation(name, signal);
        if (r.code !== 0) break;
      }
      assert.ok(r?.interrupted, `validation never started:\n${r?.stderr}`);
      assert.equal(r?.code, code, r?.stderr);
      assert.match(r?.stderr ?? "", new RegExp(`interrupted \\(${signal}\\): cleaning up`));
      assert.deepEqual(
        filesUnder(join(env.webroot, ".well-known")),
        [],
        "challenge files left in the webroot",
      );
      assert.ok(!existsSync(join(home, "certs", `${name}.lock`)), "lock left behind");
      assert.ok(!existsSync(certFiles(home, name).cert), "no certificate stored");
      const dir = join(home, "certs", name);
      if (existsSync(dir)) assert.ok(!readdirSync(dir).includes("current"), "no version switched in");
    });
  }
});
