import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Solver } from "../../../src/acme/solver";
import { Dns01Solver } from "../../../src/challenges/dns-01";
import { solversFor } from "../../../src/flow/solvers";
import type { RenewalConfig } from "../../../src/store/renewal";
import { WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";

const FILE = "/h/certs/_.example.com/renewal.json";
const webrootSolver: Solver = { type: "http-01", present: async () => {}, cleanup: async () => {} };
const deps = { logger: silentLogger, env: {}, check: async () => {}, webroot: () => webrootSolver };
const dns = (value: string) => ({ type: "dns" as const, value });

function cfg(challenge: RenewalConfig["challenge"]) {
  return { name: "_.example.com", challenge };
}

describe("the solvers of an order, from renewal.json", () => {
  test("a name and its wildcard with one provider share one dns-01 solver; a webroot name gets http-01", () => {
    const hook = { provider: "exec", command: "/bin/hook" };
    const solverFor = solversFor(
      cfg({
        type: "mixed",
        webroots: { "www.example.com": "/srv" },
        dns: { "*.example.com": hook, "example.com": { ...hook }, "example.org": { ...hook, mode: "uacme" } },
      }),
      FILE,
      deps,
    );
    const wild = solverFor(dns("example.com"), true);
    assert.ok(wild instanceof Dns01Solver);
    assert.equal(solverFor(dns("example.com"), false), wild);
    const other = solverFor(dns("example.org"), false);
    assert.ok(other instanceof Dns01Solver);
    assert.notEqual(other, wild);
    assert.equal(solverFor(dns("www.example.com"), false), webrootSolver);
    assert.throws(
      () => solverFor(dns("www.example.com"), true),
      /\*\.www\.example\.com, for which .* names no way/,
    );
  });

  test("a provider this wile does not know, or settings it refuses, name the field of renewal.json", () => {
    const bad = (entry: Record<string, unknown>) => () =>
      solversFor(
        cfg({ type: "dns-01", webroots: {}, dns: { "example.com": { provider: "exec", ...entry } } }),
        FILE,
        deps,
      );
    assert.throws(bad({ provider: "nsone" }), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(
        e.message,
        /"challenge\.dns\.example\.com\.provider" is "nsone", a DNS provider this wile does not know/,
      );
      return true;
    });
    assert.throws(bad({}), /"challenge\.dns\.example\.com\.command" is missing/);
    assert.throws(
      bad({ command: "/bin/hook", mode: "x" }),
      /"challenge\.dns\.example\.com\.mode" must be lego or uacme/,
    );
    // The command from lego's variable, for a renewal.json without it.
    assert.doesNotThrow(() =>
      solversFor(cfg({ type: "dns-01", webroots: {}, dns: { "example.com": { provider: "exec" } } }), FILE, {
        ...deps,
        env: { EXEC_PATH: "/bin/hook" },
      }),
    );
  });
});
