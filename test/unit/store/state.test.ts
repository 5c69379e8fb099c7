import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  emptyState,
  inspectState,
  type RenewalState,
  readState,
  statePath,
  writeState,
} from "../../../src/store/state";

const homes: string[] = [];
const newHome = () => {
  const h = mkdtempSync(join(tmpdir(), "wile-state-"));
  homes.push(h);
  return h;
};
after(() => {
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

const full: RenewalState = {
  version: 1,
  failures: 2,
  lastAttempt: "2026-11-23T10:00:00.000Z",
  lastError: "the CA refused the request (rateLimited, HTTP 429): too many",
  nextAttempt: "2026-11-23T10:10:00.000Z",
  lastSuccess: "2026-09-01T00:00:00.000Z",
  ari: {
    certId: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
    checkedAt: "2026-11-23T10:00:00.000Z",
    nextCheck: "2026-11-23T16:00:00.000Z",
    windowStart: "2026-12-01T00:00:00.000Z",
    windowEnd: "2026-12-03T00:00:00.000Z",
    chosen: "2026-12-02T10:00:00.000Z",
    explanationURL: "https://ca.example/why",
  },
};

describe("state.json", () => {
  test("missing -> emptyState()", async () => {
    assert.deepEqual(await readState(newHome(), "a.example"), emptyState());
    assert.deepEqual(emptyState(), { version: 1, failures: 0 });
  });

  test("round trip at <home>/certs/<name>/state.json, mode 0644, no temp files left", async () => {
    const home = newHome();
    await writeState(home, "a.example", full);
    const file = join(home, "certs", "a.example", "state.json");
    assert.equal(statePath(home, "a.example"), file);
    assert.equal(statSync(file).mode & 0o777, 0o644);
    assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), full);
    assert.deepEqual(await readState(home, "a.example"), full);
    assert.deepEqual(readdirSync(join(home, "certs", "a.example")), ["state.json"]);
  });

  for (const [what, text] of [
    ["truncated JSON", '{"version":1,"fail'],
    ["empty file", ""],
    ["not an object", "[1,2]"],
    ["another version", '{"version":2,"failures":3}'],
    ["binary junk", "\u0000\u0001\u00ff"],
  ] as const) {
    test(`corrupt (${what}) -> emptyState(), never an error`, async () => {
      const home = newHome();
      mkdirSync(join(home, "certs", "a.example"), { recursive: true });
      writeFileSync(statePath(home, "a.example"), text);
      assert.deepEqual(await readState(home, "a.example"), emptyState());
    });
  }

  test("state.json that is a directory -> emptyState()", async () => {
    const home = newHome();
    mkdirSync(statePath(home, "a.example"), { recursive: true });
    assert.deepEqual(await readState(home, "a.example"), emptyState());
  });

  test("badly typed fields are dropped one by one", async () => {
    const home = newHome();
    mkdirSync(join(home, "certs", "a.example"), { recursive: true });
    writeFileSync(
      statePath(home, "a.example"),
      JSON.stringify({
        version: 1,
        failures: -1,
        lastAttempt: "yesterday-ish",
        nextAttempt: "2026-11-23T10:10:00.000Z",
        ari: { ...full.ari, chosen: 42 },
      }),
    );
    const s = await readState(home, "a.example");
    assert.equal(s.failures, 0);
    assert.equal(s.lastAttempt, undefined);
    assert.equal(s.nextAttempt, "2026-11-23T10:10:00.000Z");
    assert.equal(s.ari?.certId, full.ari?.certId);
    // A window without its chosen moment is dropped whole (it will be fetched again).
    assert.equal(s.ari?.windowStart, undefined);
    assert.equal(s.ari?.chosen, undefined);
  });

  test("an ARI cache without certId or nextCheck is dropped", async () => {
    const home = newHome();
    mkdirSync(join(home, "certs", "a.example"), { recursive: true });
    writeFileSync(
      statePath(home, "a.example"),
      JSON.stringify({ version: 1, failures: 1, ari: { checkedAt: "2026-11-23T10:00:00Z" } }),
    );
    assert.deepEqual(await readState(home, "a.example"), { version: 1, failures: 1 });
  });
});

describe("inspectState: what is wrong with a damaged state.json (issue 10 part 6)", () => {
  const write = (text: string) => {
    const home = newHome();
    mkdirSync(join(home, "certs", "x.example"), { recursive: true });
    writeFileSync(statePath(home, "x.example"), text);
    return home;
  };
  for (const [what, text, damage] of [
    ["empty", "", /empty/],
    ["truncated", '{"version": 1, "fail', /not valid JSON/],
    ["an array", "[]", /not a JSON object/],
    ["another version", '{"version": 2}', /"version" is 2/],
    ["wrong-typed", '{"version": 1, "failures": "three", "nextAttempt": 5}', /"failures".*"nextAttempt"/],
  ] as const) {
    test(`${what}: read as new, and the damage said`, async () => {
      const r = await inspectState(write(text), "x.example");
      assert.deepEqual(r.state, emptyState());
      assert.match(r.damage ?? "", damage);
    });
  }

  test("a well-formed file has no damage; a missing one neither", async () => {
    const home = write(JSON.stringify(full));
    assert.deepEqual(await inspectState(home, "x.example"), { state: full });
    assert.deepEqual(await inspectState(newHome(), "x.example"), { state: emptyState() });
  });

  test("a directory cannot be read (nor rewritten): the error, with the path", async () => {
    const home = newHome();
    mkdirSync(statePath(home, "x.example"), { recursive: true });
    await assert.rejects(inspectState(home, "x.example"), (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, "EISDIR");
      assert.equal(e.path, statePath(home, "x.example"));
      return true;
    });
    assert.deepEqual(await readState(home, "x.example"), emptyState());
  });
});
