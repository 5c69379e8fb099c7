import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  parseSshHost,
  scpArgv,
  sshAccessSettings,
  sshArgv,
  sshHostProblem,
  sshOptionProblem,
  sshOptions,
  sshStep,
  sshStepError,
} from "../../../src/deploy/ssh-transport";
import { DeployError, defineTarget } from "../../../src/deploy/target";
import { configFromArgv, entryError, usageError, valuesFromEntry } from "../../helpers/deploy-kinds";

describe("[USER@]HOST", () => {
  test("names, aliases, Windows users, IPv6 bare or in brackets", () => {
    assert.deepEqual(parseSshHost("web1.example"), { host: "web1.example" });
    assert.deepEqual(parseSshHost("deploy@web1"), { user: "deploy", host: "web1" });
    assert.deepEqual(parseSshHost("CORP\\admin@ex1"), { user: "CORP\\admin", host: "ex1" });
    assert.deepEqual(parseSshHost("admin@corp.example@ex1"), { user: "admin@corp.example", host: "ex1" });
    assert.deepEqual(parseSshHost("u@[2001:db8::1]"), { user: "u", host: "2001:db8::1" });
    assert.deepEqual(parseSshHost("u@fd00::1"), { user: "u", host: "fd00::1" });
    assert.deepEqual(parseSshHost("[fe80::1%eth0]"), { host: "fe80::1%eth0" });
  });

  test("what ssh would misread, or a shell would, is refused with the reason", () => {
    const bad: Array<[string, RegExp]> = [
      ["-oProxyCommand=x", /^must not start with -/],
      ["@h", /^has an empty user name/],
      ["u;x@h", /^has a bad user name "u;x"/],
      ["a b@h", /^has a bad user name "a b"/],
      ["u@h;rm", /^has a bad host "h;rm"/],
      ["u@", /^has a bad host ""/],
      ["u@[h.example]", /^has a bad host "h.example"/],
      ["u@-h", /^has a bad host "-h"/],
      ["h$(x)", /^has a bad host/],
    ];
    for (const [spec, re] of bad) {
      assert.match(sshHostProblem(spec) ?? "(accepted)", re, spec);
      assert.throws(
        () => parseSshHost(spec),
        new RegExp(`^Error: "${spec.replace(/[$()[\]\\]/g, "\\$&")}" `),
      );
    }
  });
});

describe("-o options", () => {
  test("NAME=VALUE or NAME VALUE, as ssh -o reads them", () => {
    for (const o of ["A=b", "UserKnownHostsFile=/k h", "ConnectTimeout 5", "Port = 22"]) {
      assert.equal(sshOptionProblem(o), undefined, o);
    }
    for (const o of ["-oX=y", "-F/etc/x", "Novalue", "A=", "=x", "A=b\nProxyCommand x", "A=b\tc"]) {
      assert.match(
        sshOptionProblem(o) ?? "(accepted)",
        /^is not an ssh option NAME=VALUE/,
        JSON.stringify(o),
      );
    }
  });
});

describe("argv", () => {
  test("batch mode first; IdentitiesOnly=yes exactly when there is an identity; ConnectTimeout unless given", () => {
    assert.deepEqual(sshOptions({ options: [] }, "ssh"), ["-o", "BatchMode=yes", "-o", "ConnectTimeout=20"]);
    assert.deepEqual(
      sshOptions({ port: 2222, identity: "/k", options: ["BatchMode=no", "connecttimeout 3"] }, "scp"),
      [
        "-o",
        "BatchMode=yes",
        "-i",
        "/k",
        "-o",
        "IdentitiesOnly=yes",
        "-P",
        "2222",
        "-o",
        "BatchMode=no",
        "-o",
        "connecttimeout 3",
      ],
      "ssh keeps the first value of an option: the operator's BatchMode=no cannot win",
    );
    const all = sshOptions({ port: 1, identity: "/k", options: ["A=b"] }, "ssh").join(" ");
    assert.doesNotMatch(all, /StrictHostKeyChecking|UserKnownHostsFile/, "host keys as ssh checks them");
  });

  test("ssh gets an IPv6 address bare, scp in brackets; -- before the host", () => {
    const a = { options: [] };
    const h = parseSshHost("u@[2001:db8::1]");
    assert.deepEqual(sshArgv(a, h, ["sh -c 'x'"]).slice(-3), ["--", "u@2001:db8::1", "sh -c 'x'"]);
    assert.deepEqual(scpArgv(a, ["/l/a", "/l/b"], h, "/d/").slice(-4), [
      "--",
      "/l/a",
      "/l/b",
      "u@[2001:db8::1]:/d/",
    ]);
    assert.equal(scpArgv(a, ["/l"], parseSshHost("h"), "C:/x.pfx").at(-1), "h:C:/x.pfx");
  });
});

describe("sshAccessSettings", () => {
  /** A kind with only the login settings, named as a target names them; never registered. */
  const box = defineTarget({
    kind: "box",
    summary: "test kind",
    example: "--deploy box --box-port 22",
    settings: {
      port: sshAccessSettings.port({ flag: "box-port", arg: "PORT", help: "" }),
      identity: sshAccessSettings.identity({ flag: "box-identity", help: "" }),
      options: sshAccessSettings.options({ flag: "box-option", help: "" }),
    },
    create: () => {
      throw new Error("not used");
    },
  });
  const fromArgv = (argv: string[]) => configFromArgv(box, argv);
  /** What a target gets from renewal.json (the fields of SshAccess). */
  const access = (raw: Record<string, unknown>, file = "renewal.json") => valuesFromEntry(box, raw, file);

  test("the flags and placeholders the target chose; the identity is a path setting", () => {
    assert.deepEqual(
      Object.values(box.settings).map((s) => [s.flag, s.input, s.arg, s.path === true]),
      [
        ["box-port", "value", "PORT", false],
        ["box-identity", "value", "FILE", true],
        ["box-option", "list", "OPT", false],
      ],
    );
  });

  test("command line: digits for the port, a relative identity made absolute", () => {
    const c = fromArgv(["--box-port", "2222", "--box-identity", "keys/id", "--box-option", "A=b"]);
    assert.deepEqual(c, {
      kind: "box",
      port: 2222,
      identity: join(process.cwd(), "keys", "id"),
      options: ["A=b"],
    });
    assert.deepEqual(access(c), {
      port: 2222,
      identity: join(process.cwd(), "keys", "id"),
      options: ["A=b"],
    });
    assert.deepEqual(fromArgv([]), { kind: "box" });
    assert.deepEqual(access({}), { options: [] });
    assert.throws(
      () => fromArgv(["--box-port", "0"]),
      usageError(/^--box-port "0": must be a port number from 1 to 65535$/),
    );
    assert.throws(
      () => fromArgv(["--box-port", "22x"]),
      usageError(/^--box-port "22x": must be a port number/),
    );
    assert.throws(
      () => fromArgv(["--box-option", "ok=1", "--box-option=-oX"]),
      usageError(/^--box-option: "-oX" is not an ssh option NAME=VALUE/),
    );
  });

  test("renewal.json: a port number, an absolute identity, a list of options", () => {
    assert.deepEqual(access({ port: 22, identity: "/k", options: [] }), {
      port: 22,
      identity: "/k",
      options: [],
    });
    const err = (field: string, problem: RegExp) => entryError("r.json", `deploy[0].${field}`, problem);
    assert.throws(
      () => access({ port: "22x" }, "r.json"),
      err("port", /^must be a port number from 1 to 65535\.$/),
    );
    assert.throws(() => access({ port: 65536 }, "r.json"), err("port", /^must be a port number/));
    assert.throws(() => access({ port: 22.5 }, "r.json"), err("port", /^must be a port number/));
    assert.throws(() => access({ identity: "k" }, "r.json"), err("identity", /^must be an absolute path\.$/));
    assert.throws(() => access({ identity: 3 }, "r.json"), err("identity", /^must be a non-empty string\.$/));
    assert.throws(() => access({ options: 3 }, "r.json"), err("options", /^must be a list of strings\.$/));
    assert.throws(
      () => access({ options: ["A=b", "-oX"] }, "r.json"),
      err("options", /^"-oX" is not an ssh option NAME=VALUE/),
    );
  });
});

describe("steps", () => {
  test("a failure names the host and the step, with the exit and the last lines of output", async () => {
    await assert.rejects(
      sshStep("u@h:/d", {
        what: "copying the files (scp)",
        argv: [
          "sh",
          "-c",
          "echo out; echo 'ssh: connect to host h port 22: Connection refused' >&2; exit 255",
        ],
        timeoutMs: 10_000,
      }),
      (e: unknown) =>
        e instanceof DeployError &&
        e.message ===
          "u@h:/d: copying the files (scp) failed (exit 255) (ssh could not connect or log in): ssh: connect to host h port 22: Connection refused | out",
    );
    await assert.rejects(
      sshStep(
        "h",
        { what: "the reload command x", argv: ["sh", "-c", "exit 3"], timeoutMs: 10_000 },
        "Fix x.",
      ),
      (e: unknown) =>
        e instanceof DeployError &&
        e.message === "h: the reload command x failed (exit 3)" &&
        e.hint === "Fix x.",
    );
    await assert.rejects(
      sshStep("h", { what: "waiting", argv: ["sleep", "10"], timeoutMs: 200 }),
      /^DeployError: h: waiting failed \(timed out after 0 s\)$/,
    );
    await assert.rejects(
      sshStep("h", { what: "checking", argv: ["/nonexistent/wile-ssh"], timeoutMs: 1000 }),
      /^DeployError: h: checking: cannot run \/nonexistent\/wile-ssh: .*ENOENT/,
    );
    const stopped = { code: 255, signal: null, stdout: "", stderr: "Killed by signal 15.", timedOut: false };
    assert.equal(
      sshStepError("h", { what: "x", argv: ["ssh"], timeoutMs: 1000 }, { ...stopped, interrupted: true })
        .message,
      "h: x failed (stopped: wile was interrupted): Killed by signal 15.",
      "an ssh stopped by wile's interrupt is not a failed login",
    );
    const ok = await sshStep("h", { what: "x", argv: ["cat"], timeoutMs: 10_000, input: "in" });
    assert.equal(ok.stdout, "in");
  });
});
