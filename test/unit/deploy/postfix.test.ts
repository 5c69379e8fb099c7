import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { pemSegments, planChainFiles, postfixKind, postfixPlan } from "../../../src/deploy/postfix";
import { targetKind } from "../../../src/deploy/registry";
import { type DeployContext, DeployError } from "../../../src/deploy/target";
import {
  configFromArgv,
  entryError,
  targetFromEntry,
  usageError,
  valuesFromEntry,
} from "../../helpers/deploy-kinds";
import { installStubs, type Stubs, selfSigned, testContext } from "../../helpers/mail-services";
import { deployRoundTrip } from "../../helpers/renewal";

let tmp = "";
let ctx: DeployContext;
let stubs: Stubs;
/** Other keys an operator may keep next to wile's: RSA, and a second EC one. */
let rsa: { keyPem: string; certPem: string };
let ec2: { keyPem: string; certPem: string };
const savedPath = process.env.PATH;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wile-postfix-unit-"));
  ctx = testContext(tmp, "mx.example");
  rsa = selfSigned(tmp, "rsa.example", "rsa");
  ec2 = selfSigned(tmp, "old.example");
  stubs = installStubs(tmp, ["postconf", "postfix"]);
  process.env.PATH = `${stubs.bin}:${savedPath}`;
});

after(() => {
  process.env.PATH = savedPath;
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => stubs.reset());

const fromArgv = (argv: string[]) => configFromArgv(postfixKind, argv);
const keyAndChain = () => ctx.files.privkeyPem + ctx.files.fullchainPem;

describe("postfix options", () => {
  test("registered", () => {
    assert.equal(targetKind("postfix"), postfixKind);
  });

  test("defaults and every option", () => {
    assert.deepEqual(fromArgv([]), { kind: "postfix" });
    assert.equal(
      targetFromEntry(postfixKind, {}).describe(),
      "postfix (paths from postconf, verify 127.0.0.1:25)",
    );
    assert.deepEqual(
      fromArgv([
        "--postfix-config",
        "/etc/postfix-out",
        "--postfix-chain-file",
        "/etc/postfix/wile.pem",
        "--postfix-reload",
        "sudo postfix reload",
        "--postfix-verify",
        "mx.example:587",
      ]),
      {
        kind: "postfix",
        config: "/etc/postfix-out",
        chainFile: "/etc/postfix/wile.pem",
        reloadCmd: "sudo postfix reload",
        verify: "mx.example:587:smtp",
      },
    );
    assert.deepEqual(fromArgv(["--postfix-cert", "/c.pem", "--postfix-key", "/k.pem"]), {
      kind: "postfix",
      cert: "/c.pem",
      key: "/k.pem",
    });
    assert.deepEqual(fromArgv(["--postfix-chain-file", "w.pem", "--postfix-config", "pf"]), {
      kind: "postfix",
      chainFile: resolve("w.pem"),
      config: resolve("pf"),
    });
  });

  test("verify: SMTP STARTTLS on 25 by default; 465 is TLS; off", () => {
    assert.equal(fromArgv(["--postfix-verify", "127.0.0.1"]).verify, "127.0.0.1:25:smtp");
    assert.equal(fromArgv(["--postfix-verify", "127.0.0.1:2525"]).verify, "127.0.0.1:2525:smtp");
    assert.equal(fromArgv(["--postfix-verify", "127.0.0.1:465"]).verify, "127.0.0.1:465:tls");
    assert.equal(fromArgv(["--no-postfix-verify"]).verify, false);
  });

  test("bad combinations are usage errors", () => {
    assert.throws(
      () => fromArgv(["--postfix-cert", "/c"]),
      usageError(/^--deploy postfix: --postfix-cert goes with --postfix-key$/),
    );
    assert.throws(
      () => fromArgv(["--postfix-cert", "/c", "--postfix-key", "/k", "--postfix-chain-file", "/x"]),
      usageError(
        /^--deploy postfix: --postfix-chain-file and --postfix-cert\/--postfix-key exclude each other: /,
      ),
    );
    assert.throws(
      () => fromArgv(["--postfix-verify", "[::1"]),
      usageError(/^--postfix-verify "\[::1": must be HOST\[:PORT\[:PROTOCOL\]\] \(.*missing \]\)$/),
    );
  });

  test("renewal.json round trip", () => {
    const configs = [
      fromArgv([]),
      fromArgv(["--postfix-config", "/etc/pf2", "--postfix-verify", "127.0.0.1:587"]),
      fromArgv(["--postfix-chain-file", "/etc/postfix/w.pem", "--no-postfix-verify"]),
      fromArgv(["--postfix-cert", "/c", "--postfix-key", "/k", "--postfix-reload", "true"]),
    ];
    assert.deepEqual(deployRoundTrip(postfixKind, configs), configs);
    assert.throws(
      () => valuesFromEntry(postfixKind, { chainFile: "/a", cert: "/b", key: "/c" }, "w"),
      entryError(
        "w",
        "deploy[0]",
        /^\(postfix\) is inconsistent: "chainFile" and "cert"\/"key" exclude each other: /,
      ),
    );
    assert.throws(
      () => valuesFromEntry(postfixKind, { config: "etc" }, "w"),
      entryError("w", "deploy[0].config", /^must be an absolute path\.$/),
    );
  });
});

describe("smtpd_tls_chain_files contents", () => {
  test("pemSegments gives the text back", () => {
    const text = `# comment\n${rsa.keyPem}${rsa.certPem}\ntrailing`;
    const segs = pemSegments(text);
    assert.equal(segs.map((s) => s.text).join(""), text);
    assert.deepEqual(
      segs.map((s) => s.label),
      [undefined, "PRIVATE KEY", "CERTIFICATE", undefined],
    );
  });

  test("one file, empty or new: key then fullchain", () => {
    assert.deepEqual(planChainFiles(["/a.pem"], [""], ctx.files.privkeyPem, ctx.files.fullchainPem), [
      { path: "/a.pem", content: keyAndChain(), secret: true },
    ]);
  });

  test("one file with one key of another type: replaced whole", () => {
    const out = planChainFiles(
      ["/a.pem"],
      [rsa.keyPem + rsa.certPem],
      ctx.files.privkeyPem,
      ctx.files.fullchainPem,
    );
    assert.deepEqual(out, [{ path: "/a.pem", content: keyAndChain(), secret: true }]);
  });

  test("RSA and ECDSA side by side: the EC key and its chain are replaced, RSA stays byte for byte", () => {
    const before = `${rsa.keyPem}${rsa.certPem}${ec2.keyPem}${ec2.certPem}${ec2.certPem}`;
    const out = planChainFiles(["/a.pem"], [before], ctx.files.privkeyPem, ctx.files.fullchainPem);
    assert.equal(out.length, 1);
    assert.equal(out[0]?.content, `${rsa.keyPem}${rsa.certPem}${keyAndChain()}`);
  });

  test("key and chain in two listed files: key to the first, chain to the second", () => {
    const out = planChainFiles(
      ["/k.pem", "/c.pem", "/rsa.pem"],
      [ec2.keyPem, ec2.certPem, rsa.keyPem + rsa.certPem],
      ctx.files.privkeyPem,
      ctx.files.fullchainPem,
    );
    assert.deepEqual(out, [
      { path: "/k.pem", content: ctx.files.privkeyPem, secret: true },
      { path: "/c.pem", content: ctx.files.fullchainPem, secret: false },
    ]);
  });

  test("ambiguous or malformed: DeployError", () => {
    const p = (files: string[], contents: string[]) =>
      planChainFiles(files, contents, ctx.files.privkeyPem, ctx.files.fullchainPem);
    assert.throws(() => p(["/a", "/b"], ["", ""]), /lists 2 files and none holds a key/);
    assert.throws(
      () => p(["/a"], [ec2.keyPem + ec2.certPem + ec2.keyPem + ec2.certPem]),
      /holds 2 keys \(ec, ec\) and more than one of them is ec/,
    );
    assert.throws(
      () => p(["/a"], [rsa.keyPem + rsa.certPem + rsa.keyPem + rsa.certPem]),
      /none of them is ec/,
    );
    assert.throws(
      () => p(["/a"], [rsa.certPem + rsa.keyPem]),
      (e: Error) => {
        assert.ok(e instanceof DeployError);
        assert.match(e.message, /certificate before any private key/);
        return true;
      },
    );
  });
});

describe("where Postfix reads its certificate", () => {
  test("smtpd_tls_chain_files (expanded by postconf -x), with -c", async () => {
    const file = join(tmp, "chain-a.pem");
    writeFileSync(file, ec2.keyPem + ec2.certPem, { mode: 0o600 });
    stubs.answer("postconf", "smtpd_tls_chain_files", `${file}\n`);
    const plan = await postfixPlan({ config: "/etc/pf2" }, ctx);
    assert.equal(plan.setting, "smtpd_tls_chain_files");
    assert.equal(plan.certPath, file);
    assert.equal(plan.outputs.length, 1);
    assert.equal(plan.outputs[0]?.content(ctx), keyAndChain());
    assert.deepEqual(stubs.calls(), ["postconf -c /etc/pf2 -xh smtpd_tls_chain_files"]);
  });

  test("a list separated by commas and spaces", async () => {
    const a = join(tmp, "l-rsa.pem");
    const b = join(tmp, "l-ec.pem");
    writeFileSync(a, rsa.keyPem + rsa.certPem);
    writeFileSync(b, ec2.keyPem + ec2.certPem);
    stubs.answer("postconf", "smtpd_tls_chain_files", `${a}, ${b}\n`);
    const plan = await postfixPlan({}, ctx);
    assert.deepEqual(
      plan.outputs.map((o) => o.path),
      [b],
    );
    assert.equal(plan.certPath, b);
  });

  test("legacy cert and key files", async () => {
    stubs.answer("postconf", "smtpd_tls_cert_file", "/etc/ssl/certs/mx.pem\n");
    stubs.answer("postconf", "smtpd_tls_key_file", "/etc/ssl/private/mx.key\n");
    const plan = await postfixPlan({}, ctx);
    assert.equal(plan.setting, "smtpd_tls_cert_file");
    assert.deepEqual(
      plan.outputs.map((o) => [o.path, o.secret, o.content(ctx)]),
      [
        ["/etc/ssl/certs/mx.pem", false, ctx.files.fullchainPem],
        ["/etc/ssl/private/mx.key", true, ctx.files.privkeyPem],
      ],
    );
    assert.deepEqual(stubs.calls(), [
      "postconf -xh smtpd_tls_chain_files",
      "postconf -xh smtpd_tls_cert_file",
      "postconf -xh smtpd_tls_key_file",
    ]);
  });

  test("key file defaulting to the cert file: one file, key first", async () => {
    stubs.answer("postconf", "smtpd_tls_cert_file", "/etc/postfix/mx.pem\n");
    stubs.answer("postconf", "smtpd_tls_key_file", "/etc/postfix/mx.pem\n");
    const plan = await postfixPlan({}, ctx);
    assert.equal(plan.outputs.length, 1);
    assert.equal(plan.outputs[0]?.content(ctx), keyAndChain());
    assert.equal(plan.outputs[0]?.secret, true);
  });

  test("no certificate configured, or none", async () => {
    await assert.rejects(postfixPlan({}, ctx), /smtpd_tls_cert_file is empty/);
    stubs.answer("postconf", "smtpd_tls_cert_file", "none\n");
    await assert.rejects(postfixPlan({}, ctx), (e: Error) => {
      assert.match(e.message, /smtpd_tls_cert_file is none/);
      assert.match((e as DeployError).hint ?? "", /smtpd_tls_chain_files = /);
      return true;
    });
  });

  test("postconf failing", async () => {
    stubs.fail("postconf", "postconf: fatal: open /etc/nope/main.cf: No such file or directory\n");
    await assert.rejects(
      postfixPlan({ config: "/etc/nope" }, ctx),
      /postconf -c \/etc\/nope -xh smtpd_tls_chain_files failed \(exit 1\): postconf: fatal: open/,
    );
  });

  test("explicit files need no postconf", async () => {
    const plan = await postfixPlan({ chainFile: "/x.pem" }, ctx);
    assert.equal(plan.outputs[0]?.content(ctx), keyAndChain());
    const pair = await postfixPlan({ cert: "/c.pem", key: "/k.pem" }, ctx);
    assert.deepEqual(
      pair.outputs.map((o) => o.path),
      ["/c.pem", "/k.pem"],
    );
    assert.deepEqual(stubs.calls(), []);
  });
});

describe("postfix check and deploy", () => {
  const target = (c: Record<string, unknown>) => targetFromEntry(postfixKind, { verify: false, ...c });

  test("check: an unwritable target fails before anything changes", async () => {
    stubs.answer("postconf", "smtpd_tls_chain_files", `${tmp}/missing/chain.pem\n`);
    await assert.rejects(target({}).check(ctx), /does not exist/);
  });

  test("deploy: chain file rewritten keeping its mode, postfix -c DIR reload", async () => {
    const file = join(tmp, "deploy-chain.pem");
    writeFileSync(file, ec2.keyPem + ec2.certPem, { mode: 0o640 });
    stubs.answer("postconf", "smtpd_tls_chain_files", `${file}\n`);
    const t = target({ config: "/etc/pf2" });
    await t.check(ctx);
    await t.deploy(ctx);
    assert.equal(readFileSync(file, "utf8"), keyAndChain());
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.equal(stubs.calls().at(-1), "postfix -c /etc/pf2 reload");
    assert.equal(t.describe(), `postfix (${file})`);
  });

  test("deploy: a failing postfix reload", async () => {
    stubs.fail("postfix", "postfix/postfix-script: fatal: the Postfix mail system is not running\n");
    const t = target({ chainFile: join(tmp, "x.pem") });
    await t.check(ctx);
    await assert.rejects(t.deploy(ctx), /postfix: postfix reload failed \(exit 1\): .*not running/);
    assert.equal(readFileSync(join(tmp, "x.pem"), "utf8"), keyAndChain());
  });
});
