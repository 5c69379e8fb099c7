import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type OptionSpec, parseOptions } from "../../../src/cli/options";
import { UsageError } from "../../../src/util/errors";

const SPECS: OptionSpec[] = [
  { name: "domain", alias: "d", type: "string", repeat: true, help: "" },
  { name: "webroot", alias: "w", type: "string", repeat: true, help: "" },
  { name: "eab-hmac-key", type: "string", help: "" },
  { name: "force", type: "boolean", help: "" },
  { name: "preflight", type: "boolean", defaultTrue: true, help: "" },
];

describe("parseOptions", () => {
  test("a value may start with - (a base64url EAB key or password): the option takes the next word", () => {
    const o = parseOptions(["--eab-hmac-key", "-31JZ_b-kQS", "--force"], SPECS);
    assert.equal(o["eab-hmac-key"], "-31JZ_b-kQS");
    assert.equal(o.force, true);
    assert.deepEqual(o._, []);
    assert.deepEqual(parseOptions(["-d", "a.example", "-w", "-dir"], SPECS).webroot, ["-dir"]);
  });

  test("but not when the next word is an option of the command: that one still needs a value", () => {
    assert.throws(
      () => parseOptions(["-d", "-w", "/srv"], SPECS),
      (e: unknown) => e instanceof UsageError && /--domain needs a value/.test(e.message),
    );
    assert.throws(
      () => parseOptions(["--eab-hmac-key", "--no-preflight"], SPECS),
      (e: unknown) => e instanceof UsageError && /--eab-hmac-key needs a value/.test(e.message),
    );
  });

  test("--name=value, -- and unknown options as before", () => {
    assert.equal(parseOptions(["--eab-hmac-key=-x"], SPECS)["eab-hmac-key"], "-x");
    assert.deepEqual(parseOptions(["--", "-x"], SPECS)._, ["-x"]);
    assert.throws(() => parseOptions(["--bogus"], SPECS), /unknown option --bogus/);
    assert.equal(parseOptions(["--no-preflight"], SPECS).preflight, false);
  });
});
