import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, test } from "node:test";
import {
  allTargetOptions,
  DEPLOY_OPTION,
  deployConfigsFromOptions,
  targetOptions,
} from "../../../src/cli/deploy-options";
import { list, parseOptions } from "../../../src/cli/options";
import { commandKind } from "../../../src/deploy/command";
import { dovecotKind } from "../../../src/deploy/dovecot";
import { exchangeKind } from "../../../src/deploy/exchange";
import { filesKind } from "../../../src/deploy/files";
import { haproxyKind } from "../../../src/deploy/haproxy";
import { nginxKind } from "../../../src/deploy/nginx";
import { pfxLegacy, pfxPassword } from "../../../src/deploy/pfx";
import { postfixKind } from "../../../src/deploy/postfix";
import { TARGET_KINDS } from "../../../src/deploy/registry";
import { readDeployEntry } from "../../../src/deploy/run";
import { defineTarget, type TargetKind } from "../../../src/deploy/target";
import { parseRenewalConfig, serializeRenewalConfig } from "../../../src/store/renewal";
import { UsageError } from "../../../src/util/errors";
import { port, required, texts } from "../../../src/util/settings";
import { entryError, usageError } from "../../helpers/deploy-kinds";
import { renewalConfig } from "../../helpers/renewal";

/**
 * A stand-in for a kind that shares --pfx-password and --pfx-legacy with files (as exchange does)
 * and has a required repeatable option and a port; never registered, passed in with the others.
 */
const winbox = defineTarget({
  kind: "winbox",
  summary: "test kind",
  example: "--deploy winbox --winbox-host a.example",
  settings: {
    hosts: required(
      texts({
        flag: "winbox-host",
        arg: "HOST",
        help: "",
        check: (v) => (/^[a-z0-9.-]+$/.test(v) ? undefined : "must be a host name"),
      }),
    ),
    port: port({ help: "" }),
    pfxPassword,
    pfxLegacy,
  },
  create: () => {
    throw new Error("not used");
  },
});

const KINDS: TargetKind[] = [
  filesKind,
  commandKind,
  dovecotKind,
  postfixKind,
  nginxKind,
  haproxyKind,
  winbox,
];

/** What `wile issue/deploy ...argv` stores as renewal.json's deploy list, through the same code. */
function configs(argv: string[], kinds: TargetKind[] = KINDS) {
  const opts = parseOptions(argv, [DEPLOY_OPTION, ...allTargetOptions(kinds)]);
  return deployConfigsFromOptions(opts, list(opts, "deploy"), kinds);
}

describe("the option table", () => {
  test("from the declarations, in their order: <kind>-<setting> unless a flag is given", () => {
    assert.deepEqual(
      targetOptions(winbox).map(({ name, type, repeat, arg }) => ({ name, type, repeat, arg })),
      [
        { name: "winbox-host", type: "string", repeat: true, arg: "HOST" },
        { name: "winbox-port", type: "string", repeat: undefined, arg: undefined },
        { name: "pfx-password", type: "string", repeat: undefined, arg: "PW" },
        { name: "pfx-legacy", type: "boolean", repeat: undefined, arg: undefined },
      ],
    );
  });

  test("every kind's options, a flag two kinds share once", () => {
    const names = allTargetOptions(KINDS).map((o) => o.name);
    assert.equal(names.filter((n) => n === "pfx-password").length, 1);
    assert.equal(names.filter((n) => n === "pfx-legacy").length, 1);
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.includes("winbox-host") && names.includes("deploy-cmd") && names.includes("owner"));
  });
});

describe("--deploy flags become renewal.json entries", () => {
  test("each asked kind in order, with the settings given and nothing else", () => {
    assert.deepEqual(
      configs([
        ...["--deploy", "nginx", "--deploy", "files", "--deploy", "command"],
        ...["--nginx-reload", "systemctl reload nginx", "--no-nginx-verify"],
        ...["--key-file", "/etc/ssl/k.pem", "--mode", "0o640", "--verify", "127.0.0.1:993"],
        ...["--deploy-cmd", "/usr/local/bin/push", "--deploy-timeout", "90"],
      ]),
      [
        { kind: "nginx", reloadCmd: "systemctl reload nginx", verify: false },
        { kind: "files", keyFile: "/etc/ssl/k.pem", mode: "0640", verify: "127.0.0.1:993:tls" },
        { kind: "command", command: "/usr/local/bin/push", timeout: 90 },
      ],
    );
    assert.deepEqual(configs([]), []);
  });

  test("relative paths are made absolute against the current directory; other strings are kept", () => {
    assert.deepEqual(
      configs([
        ...["--deploy", "files", "--deploy", "dovecot", "--deploy", "haproxy"],
        ...["--cert-file", "c.pem", "--fullchain-file", "../f.pem", "--reload-cmd", "./reload.sh"],
        ...["--dovecot-cert", "d/c.pem", "--dovecot-key", "./d/k.pem"],
        ...["--haproxy-pem", "/etc/haproxy/site.pem", "--haproxy-socket", "admin.sock"],
      ]),
      [
        {
          kind: "files",
          certFile: resolve("c.pem"),
          fullchainFile: resolve("../f.pem"),
          reloadCmd: "./reload.sh",
        },
        { kind: "dovecot", cert: resolve("d/c.pem"), key: resolve("d/k.pem") },
        { kind: "haproxy", pem: "/etc/haproxy/site.pem", socket: resolve("admin.sock") },
      ],
    );
  });

  test("repeatable options give a list; a port is a number", () => {
    assert.deepEqual(
      configs([
        "--deploy",
        "winbox",
        "--winbox-host",
        "a.example",
        "--winbox-host",
        "b.example",
        "--winbox-port",
        "2222",
      ]),
      [{ kind: "winbox", hosts: ["a.example", "b.example"], port: 2222 }],
    );
  });

  test("a shared flag goes to each asked kind that can use it", () => {
    // files takes --pfx-password only with --pfx-file; winbox (as exchange) always.
    assert.deepEqual(
      configs([
        ...["--deploy", "files", "--deploy", "winbox", "--cert-file", "/c.pem", "--winbox-host", "w"],
        ...["--pfx-password", "s3cret", "--pfx-legacy"],
      ]),
      [
        { kind: "files", certFile: "/c.pem" },
        { kind: "winbox", hosts: ["w"], pfxPassword: "s3cret", pfxLegacy: true },
      ],
    );
    assert.deepEqual(
      configs([
        ...["--deploy", "files", "--deploy", "winbox", "--pfx-file", "/p.pfx", "--winbox-host", "w"],
        ...["--pfx-password", "s3cret"],
      ]),
      [
        { kind: "files", pfxFile: "/p.pfx", pfxPassword: "s3cret" },
        { kind: "winbox", hosts: ["w"], pfxPassword: "s3cret" },
      ],
    );
    assert.throws(
      () => configs(["--deploy", "files", "--cert-file", "/c.pem", "--pfx-password", "s3cret"]),
      usageError(/^--pfx-password goes with --pfx-file \(or with --deploy winbox\)$/),
    );
    assert.throws(
      () => configs(["--deploy", "files", "--cert-file", "/c.pem", "--pfx-legacy"]),
      usageError(/^--pfx-legacy goes with --pfx-file \(or with --deploy winbox\)$/),
    );
  });

  test("--pfx-password with the real files and exchange kinds (the registry's)", () => {
    const real = (argv: string[]) => configs(argv, [...TARGET_KINDS]);
    assert.ok(TARGET_KINDS.includes(filesKind) && TARGET_KINDS.includes(exchangeKind));
    // exchange always takes it; files only with --pfx-file, so here it is exchange's alone.
    assert.deepEqual(
      real([
        ...["--deploy", "files", "--cert-file", "/c.pem"],
        ...["--deploy", "exchange", "--exchange-host", "h", "--pfx-password", "pw"],
      ]),
      [
        { kind: "files", certFile: "/c.pem" },
        { kind: "exchange", hosts: ["h"], pfxPassword: "pw" },
      ],
    );
    // files alone cannot use it: refused, naming the flag, what it goes with, and who else takes it.
    assert.throws(
      () => real(["--deploy", "files", "--cert-file", "/c.pem", "--pfx-password", "pw"]),
      (e: unknown) => {
        usageError(/^--pfx-password goes with --pfx-file \(or with --deploy exchange\)$/)(e);
        assert.equal((e as UsageError).hint, "wile deploy files --help lists its options.");
        return true;
      },
    );
    // With --pfx-file, files gets it too (alone, or with exchange).
    assert.deepEqual(
      real(["--deploy", "files", "--cert-file", "/c.pem", "--pfx-file", "/p.pfx", "--pfx-password", "pw"]),
      [{ kind: "files", certFile: "/c.pem", pfxFile: "/p.pfx", pfxPassword: "pw" }],
    );
    assert.deepEqual(
      real([
        ...["--deploy", "files", "--cert-file", "/c.pem", "--pfx-file", "/p.pfx"],
        ...["--deploy", "exchange", "--exchange-host", "h", "--pfx-password", "pw"],
      ]),
      [
        { kind: "files", certFile: "/c.pem", pfxFile: "/p.pfx", pfxPassword: "pw" },
        { kind: "exchange", hosts: ["h"], pfxPassword: "pw" },
      ],
    );
  });

  test("a kind's flag without --deploy KIND is refused, naming the kind", () => {
    assert.throws(
      () => configs(["--nginx-reload", "x"]),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(
          e.message,
          "--nginx-reload belongs to the nginx target, but --deploy nginx was not given",
        );
        assert.equal(e.hint, "Add --deploy nginx, or drop --nginx-reload.");
        return true;
      },
    );
    assert.throws(
      () => configs(["--deploy", "winbox", "--winbox-host", "w", "--cert-file", "/c.pem"]),
      usageError(/^--cert-file belongs to the files target, but --deploy files was not given$/),
    );
    assert.throws(
      () => configs(["--deploy", "files", "--cert-file", "/c.pem", "--winbox-port", "22"]),
      usageError(/^--winbox-port belongs to the winbox target, but --deploy winbox was not given$/),
    );
    // --no-KIND-verify reaches the string option as "false": given, so refused too.
    assert.throws(
      () => configs(["--deploy", "files", "--cert-file", "/c.pem", "--no-dovecot-verify"]),
      usageError(/^--dovecot-verify belongs to the dovecot target/),
    );
    // A switch left at its default (minimist's false) is not taken for given.
    assert.deepEqual(configs(["--deploy", "files", "--cert-file", "/c.pem", "--no-pfx-legacy"]), [
      { kind: "files", certFile: "/c.pem" },
    ]);
  });

  test("unknown kinds and a kind asked twice", () => {
    assert.throws(
      () => configs(["--deploy", "teleport"]),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.message, 'unknown --deploy target "teleport"');
        assert.equal(
          e.hint,
          "Targets: files, command, dovecot, postfix, nginx, haproxy, winbox. wile deploy --help describes them.",
        );
        return true;
      },
    );
    assert.throws(
      () => configs(["--deploy", "nginx", "--deploy", "nginx"]),
      usageError(/^--deploy nginx was given twice$/),
    );
  });

  test("a missing required setting names the option and its argument, with an example", () => {
    assert.throws(
      () => configs(["--deploy", "command"]),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.message, "--deploy command needs --deploy-cmd CMD");
        assert.equal(
          e.hint,
          "For example: --deploy command --deploy-cmd '/usr/local/bin/push-cert.sh'. wile deploy command --help lists its options.",
        );
        return true;
      },
    );
    assert.throws(
      () => configs(["--deploy", "haproxy", "--haproxy-socket", "/s"]),
      usageError(/^--deploy haproxy needs --haproxy-pem PATH$/),
    );
    assert.throws(
      () => configs(["--deploy", "winbox"]),
      usageError(/^--deploy winbox needs --winbox-host HOST$/),
    );
  });

  test("a bad value names the option and shows the value, unless it is a secret", () => {
    assert.throws(
      () => configs(["--deploy", "winbox", "--winbox-host", "w", "--winbox-port", "99999"]),
      usageError(/^--winbox-port "99999": must be a port number from 1 to 65535$/),
    );
    assert.throws(
      () => configs(["--deploy", "winbox", "--winbox-host", "w", "--winbox-host", "Bad_Host"]),
      usageError(/^--winbox-host: "Bad_Host" must be a host name$/),
    );
    assert.throws(
      () => configs(["--deploy", "winbox", "--winbox-host", "w", "--pfx-password", "top\nsecret"]),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.message, "--pfx-password: must not contain line breaks or NUL");
        assert.ok(!`${e.message} ${e.hint}`.includes("secret"));
        return true;
      },
    );
  });

  test("checks across settings name the options", () => {
    assert.throws(
      () => configs(["--deploy", "nginx", "--nginx-key", "/k.pem"]),
      usageError(/^--deploy nginx: --nginx-key goes with --nginx-cert$/),
    );
    assert.throws(
      () =>
        configs([
          "--deploy",
          "postfix",
          "--postfix-chain-file",
          "/x",
          "--postfix-cert",
          "/c",
          "--postfix-key",
          "/k",
        ]),
      usageError(
        /^--deploy postfix: --postfix-chain-file and --postfix-cert\/--postfix-key exclude each other: /,
      ),
    );
    assert.throws(
      () => configs(["--deploy", "haproxy", "--haproxy-pem", "/x.pem"]),
      usageError(
        /^--deploy haproxy: give --haproxy-socket PATH \(hot update over the runtime API\) or --haproxy-reload CMD, /,
      ),
    );
    assert.throws(
      () => configs(["--deploy", "files", "--cert-file", "/a", "--key-file", "/a"]),
      usageError(/^--deploy files: \/a is given for two different files$/),
    );
  });
});

describe("the stored entries read back", () => {
  const argvs: string[][] = [
    [
      ...["--deploy", "files", "--cert-file", "c.pem", "--key-file", "/k.pem", "--ca-file", "/ca.pem"],
      ...[
        "--fullchain-file",
        "/f.pem",
        "--combined-file",
        "/all.pem",
        "--pfx-file",
        "/p.pfx",
        "--pfx-password",
        "pw",
      ],
      ...[
        "--pfx-legacy",
        "--owner",
        "root:ssl-cert",
        "--mode",
        "640",
        "--reload-cmd",
        "true",
        "--verify",
        "[::1]:587",
      ],
    ],
    ["--deploy", "command", "--deploy-cmd", "echo $WILE_CERT_NAME", "--deploy-timeout", "5"],
    [
      ...[
        "--deploy",
        "dovecot",
        "--dovecot-config",
        "/etc/d.conf",
        "--dovecot-cert",
        "/c",
        "--dovecot-key",
        "/k",
      ],
      ...["--dovecot-reload", "sudo doveadm reload", "--dovecot-verify", "mail.example:143"],
    ],
    [
      "--deploy",
      "postfix",
      "--postfix-config",
      "pf",
      "--postfix-chain-file",
      "/w.pem",
      "--no-postfix-verify",
    ],
    [
      "--deploy",
      "nginx",
      "--nginx-cert",
      "/c",
      "--nginx-key",
      "/k",
      "--nginx-reload",
      "r",
      "--nginx-verify",
      "10.0.0.1",
    ],
    [
      "--deploy",
      "haproxy",
      "--haproxy-pem",
      "/h.pem",
      "--haproxy-reload",
      "r",
      "--haproxy-verify",
      "h.example:8443",
    ],
    [
      "--deploy",
      "winbox",
      "--winbox-host",
      "a",
      "--winbox-host",
      "b",
      "--winbox-port",
      "22",
      "--pfx-password",
      "pw",
    ],
  ];

  test("through renewal.json, readDeployEntry gives the same stored entry back", () => {
    for (const argv of argvs) {
      const stored = configs(argv);
      const back = parseRenewalConfig(
        serializeRenewalConfig(renewalConfig("x.example", stored)),
        "renewal.json",
      );
      const again = back.deploy.map(
        (d, i) => readDeployEntry(d, i, { file: "renewal.json", name: "x.example" }, KINDS).stored,
      );
      assert.deepEqual(again, stored, argv.join(" "));
    }
  });

  test("the values a target is made from: the stored settings with the defaults filled in", () => {
    const [c] = configs(["--deploy", "command", "--deploy-cmd", "x"]);
    assert.deepEqual(readDeployEntry(c, 0, { file: "r.json", name: "x.example" }, KINDS).values, {
      command: "x",
      timeout: 60,
    });
    const [f] = configs(["--deploy", "files", "--cert-file", "/c"]);
    assert.deepEqual(readDeployEntry(f, 0, { file: "r.json", name: "x.example" }, KINDS).values, {
      certFile: "/c",
      pfxLegacy: false,
    });
  });

  test("settings a newer wile wrote are ignored, and not stored again", () => {
    const r = readDeployEntry(
      { kind: "command", command: "x", future: 1 },
      0,
      { file: "r.json", name: "x.example" },
      KINDS,
    );
    assert.deepEqual(r.stored, { kind: "command", command: "x" });
  });

  test('an error in an entry reads `<file>: "deploy[i].<field>" <problem>.` and the hint names the fix', () => {
    const where = { file: "/h/certs/x.example/renewal.json", name: "x.example" };
    const read =
      (raw: unknown, i = 0) =>
      () =>
        readDeployEntry(raw, i, where, KINDS);
    const err = (field: string, problem: RegExp) => entryError(where.file, field, problem, "x.example");
    assert.throws(
      read({ kind: "files", keyFile: "k.pem" }, 2),
      err("deploy[2].keyFile", /^must be an absolute path\.$/),
    );
    assert.throws(read({ kind: "command" }), err("deploy[0].command", /^is missing\.$/));
    assert.throws(
      read({ kind: "command", command: "x", timeout: 0 }),
      err("deploy[0].timeout", /^must be whole seconds from 1 to 3600\.$/),
    );
    assert.throws(
      read({ kind: "winbox", hosts: "a.example b" }),
      err("deploy[0].hosts", /^"a\.example b" must be a host name\.$/),
    );
    assert.throws(
      read({ kind: "nginx", verify: 443 }),
      err("deploy[0].verify", /^must be HOST\[:PORT\[:PROTOCOL\]\] or false\.$/),
    );
    assert.throws(
      read({ kind: "postfix", cert: "/c", key: "/k", chainFile: "/x" }),
      err("deploy[0]", /^\(postfix\) is inconsistent: "chainFile" and "cert"\/"key" exclude each other: /),
    );
    assert.throws(
      read({ kind: "nginx", key: "/k" }),
      err("deploy[0]", /^\(nginx\) is inconsistent: "key" goes with "cert"\.$/),
    );
    assert.throws(
      read({ kind: "teleport" }),
      err("deploy[0].kind", /^is "teleport", a target this wile does not know /),
    );
    assert.throws(read({ cert: "/c" }), err("deploy[0]", /^has no kind\.$/));
    assert.throws(read("nginx"), err("deploy[0]", /^has no kind\.$/));
  });

  test("a secret's value is not shown in a renewal.json error either", () => {
    assert.throws(
      () =>
        readDeployEntry(
          { kind: "winbox", hosts: ["a"], pfxPassword: "top\nsecret" },
          0,
          { file: "r.json", name: "x.example" },
          KINDS,
        ),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(
          e.message,
          /^r\.json: "deploy\[0\]\.pfxPassword" must not contain line breaks or NUL\.$/,
        );
        return true;
      },
    );
  });
});
