import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseOptions } from "../../../src/cli/options";
import { TARGET_KINDS } from "../../../src/deploy/registry";
import { deployConfigsFromOptions, runDeploys } from "../../../src/deploy/run";
import { DeployError, type TargetKind } from "../../../src/deploy/target";
import { CertStore } from "../../../src/store/certs";
import { silentLogger } from "../../../src/util/log";
import { renewalConfig } from "../../helpers/renewal";

/** A target kind that records what happens to it, added to the registry for these tests. */
const events: string[] = [];
const fake: TargetKind<{ kind: string; label: string; failCheck?: boolean; failDeploy?: boolean }> = {
  kind: "fake-test",
  summary: "records calls",
  options: [
    { name: "fake-label", type: "string", help: "" },
    { name: "fake-flag", type: "boolean", help: "" },
    { name: "fake-verify", type: "boolean", defaultTrue: true, help: "" },
  ],
  fromOptions: (opts) => ({ kind: "fake-test", label: String(opts["fake-label"] ?? "x") }),
  parse: (raw) => raw as never,
  create: (c) => ({
    kind: c.kind,
    describe: () => `fake ${c.label}`,
    check: async (ctx) => {
      events.push(`check ${c.label} ${ctx.serialHex.length > 0}`);
      if (c.failCheck) throw new DeployError(`cannot write for ${c.label}`);
    },
    deploy: async () => {
      events.push(`deploy ${c.label}`);
      if (c.failDeploy) throw new DeployError(`${c.label} refused`, { hint: `fix ${c.label}` });
    },
  }),
};

let home = "";
const cfg = (deploy: Array<Record<string, unknown> & { kind: string }>) => renewalConfig("d.example", deploy);

before(async () => {
  TARGET_KINDS.push(fake as TargetKind);
  home = mkdtempSync(join(tmpdir(), "wile-deploy-run-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=d.example",
      "-keyout",
      join(home, "k.pem"),
      "-out",
      join(home, "c.pem"),
    ],
    { stdio: "ignore" },
  );
  const cert = readFileSync(join(home, "c.pem"), "utf8");
  await new CertStore(home).install("d.example", {
    privkeyPem: readFileSync(join(home, "k.pem"), "utf8"),
    certPem: cert,
    chainPem: cert,
    fullchainPem: cert + cert,
  });
});

after(() => {
  TARGET_KINDS.splice(TARGET_KINDS.indexOf(fake as TargetKind), 1);
  rmSync(home, { recursive: true, force: true });
});

describe("running deploy targets", () => {
  test("every target is checked before any deploys; all deploy in order", async () => {
    events.length = 0;
    const n = await runDeploys(
      home,
      "d.example",
      cfg([
        { kind: "fake-test", label: "a" },
        { kind: "fake-test", label: "b" },
      ]),
      silentLogger,
      0,
    );
    assert.equal(n, 2);
    assert.deepEqual(events, ["check a true", "check b true", "deploy a", "deploy b"]);
  });

  test("a failed check stops everything before any file is changed", async () => {
    events.length = 0;
    await assert.rejects(
      runDeploys(
        home,
        "d.example",
        cfg([
          { kind: "fake-test", label: "a" },
          { kind: "fake-test", label: "b", failCheck: true },
        ]),
        silentLogger,
        0,
      ),
      /deploy to fake b failed: cannot write for b \(nothing was deployed\)/,
    );
    assert.deepEqual(events, ["check a true", "check b true"]);
  });

  test("a failed deploy does not stop the others; all failures are listed with the first hint", async () => {
    events.length = 0;
    await assert.rejects(
      runDeploys(
        home,
        "d.example",
        cfg([
          { kind: "fake-test", label: "a", failDeploy: true },
          { kind: "fake-test", label: "b" },
          { kind: "fake-test", label: "c", failDeploy: true },
        ]),
        silentLogger,
        0,
      ),
      (e: unknown) => {
        assert.ok(e instanceof DeployError);
        assert.match(
          e.message,
          /2 of 3 deploy targets failed:\n {2}deploy to fake a failed: a refused\n {2}deploy to fake c failed: c refused/,
        );
        assert.equal(e.hint, "fix a");
        assert.equal(e.exitCode, 1);
        return true;
      },
    );
    assert.deepEqual(
      events.filter((e) => e.startsWith("deploy")),
      ["deploy a", "deploy b", "deploy c"],
    );
  });

  test("unknown kinds in renewal.json are named", async () => {
    await assert.rejects(
      runDeploys(home, "d.example", cfg([{ kind: "teleport" }]), silentLogger, 0),
      /deploy\[0\]: unknown target kind "teleport"/,
    );
  });
});

describe("--deploy on the command line", () => {
  const specs = [{ name: "deploy", type: "string" as const, repeat: true, help: "" }, ...fake.options];
  test("builds each kind's settings", () => {
    const opts = parseOptions(["--deploy", "fake-test", "--fake-label", "z"], specs);
    assert.deepEqual(deployConfigsFromOptions(opts, ["fake-test"]), [{ kind: "fake-test", label: "z" }]);
  });
  test("unknown kind, a kind twice, and a kind's option without --deploy KIND are usage errors", () => {
    assert.throws(
      () => deployConfigsFromOptions(parseOptions([], specs), ["teleport"]),
      /unknown --deploy target "teleport"/,
    );
    assert.throws(
      () => deployConfigsFromOptions(parseOptions([], specs), ["fake-test", "fake-test"]),
      /given twice/,
    );
    assert.throws(
      () => deployConfigsFromOptions(parseOptions(["--fake-label", "z"], specs), []),
      /--fake-label belongs to the fake-test target, but --deploy fake-test was not given/,
    );
    assert.throws(
      () => deployConfigsFromOptions(parseOptions(["--fake-flag"], specs), []),
      /--fake-flag belongs/,
    );
    assert.throws(
      () => deployConfigsFromOptions(parseOptions(["--no-fake-verify"], specs), []),
      /--fake-verify belongs/,
    );
  });
  test("booleans left at their defaults are not taken for given options", () => {
    assert.deepEqual(deployConfigsFromOptions(parseOptions([], specs), []), []);
  });
});
