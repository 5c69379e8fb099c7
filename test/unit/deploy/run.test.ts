import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { TARGET_KINDS } from "../../../src/deploy/registry";
import { runDeploys, targetsFromConfig } from "../../../src/deploy/run";
import { DeployError, defineTarget, type TargetKind } from "../../../src/deploy/target";
import { CertStore } from "../../../src/store/certs";
import { silentLogger } from "../../../src/util/log";
import { flag, required, text } from "../../../src/util/settings";
import { entryError } from "../../helpers/deploy-kinds";
import { renewalConfig } from "../../helpers/renewal";

/** A target kind that records what happens to it; passed to the functions under test, never registered. */
const events: string[] = [];
const fake = defineTarget({
  kind: "fake-test",
  summary: "records calls",
  example: "--deploy fake-test --fake-label a",
  settings: {
    label: required(text({ flag: "fake-label", help: "" })),
    failCheck: flag({ flag: "fake-fail-check", help: "" }),
    failDeploy: flag({ flag: "fake-fail-deploy", help: "" }),
  },
  create: (c) => ({
    kind: "fake-test",
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
});
const KINDS: TargetKind[] = [fake];

let home = "";
const cfg = (deploy: Array<Record<string, unknown> & { kind: string }>) => renewalConfig("d.example", deploy);

before(async () => {
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

after(() => rmSync(home, { recursive: true, force: true }));

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
      { verifyWaitMs: 0, kinds: KINDS },
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
        { verifyWaitMs: 0, kinds: KINDS },
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
        { verifyWaitMs: 0, kinds: KINDS },
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

  test("unknown kinds and broken entries in renewal.json are named, before anything runs", async () => {
    const file = join(home, "certs", "d.example", "renewal.json");
    events.length = 0;
    await assert.rejects(
      runDeploys(
        home,
        "d.example",
        cfg([{ kind: "fake-test", label: "a" }, { kind: "teleport" }]),
        silentLogger,
        { verifyWaitMs: 0, kinds: KINDS },
      ),
      entryError(
        file,
        "deploy[1].kind",
        /^is "teleport", a target this wile does not know \(it knows fake-test; an older wile\? upgrade it\)\.$/,
        "d.example",
      ),
    );
    await assert.rejects(
      runDeploys(
        home,
        "d.example",
        cfg([{ kind: "fake-test", label: "a", failCheck: "yes" }]),
        silentLogger,
        { verifyWaitMs: 0, kinds: KINDS },
      ),
      entryError(file, "deploy[0].failCheck", /^must be true or false\.$/, "d.example"),
    );
    await assert.rejects(
      runDeploys(home, "d.example", cfg([{ kind: "fake-test" }]), silentLogger, {
        verifyWaitMs: 0,
        kinds: KINDS,
      }),
      entryError(file, "deploy[0].label", /^is missing\.$/, "d.example"),
    );
    assert.deepEqual(events, []);
  });

  test("only the kinds passed in are known: the registry has no test kind", () => {
    assert.ok(!TARGET_KINDS.some((k) => k.kind === "fake-test"));
    const deploy = [{ kind: "fake-test", label: "a" }];
    assert.equal(targetsFromConfig({ name: "d.example", deploy }, "r.json", KINDS).length, 1);
    assert.throws(
      () => targetsFromConfig({ name: "d.example", deploy }, "r.json"),
      entryError(
        "r.json",
        "deploy[0].kind",
        /^is "fake-test", a target this wile does not know /,
        "d.example",
      ),
    );
  });
});
