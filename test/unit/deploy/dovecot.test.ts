import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { createServer, type Server } from "node:tls";
import { deployConfigsFromOptions, targetOptions } from "../../../src/cli/deploy-options";
import { parseOptions } from "../../../src/cli/options";
import { dovecotKind, dovecotPaths } from "../../../src/deploy/dovecot";
import { targetKind } from "../../../src/deploy/registry";
import { type DeployContext, DeployError } from "../../../src/deploy/target";
import {
  configFromArgv,
  entryError,
  targetFromEntry,
  usageError,
  valuesFromEntry,
} from "../../helpers/deploy-kinds";
import { installStubs, type Stubs, testContext } from "../../helpers/mail-services";
import { deployRoundTrip } from "../../helpers/renewal";

let tmp = "";
let ctx: DeployContext;
let stubs: Stubs;
const savedPath = process.env.PATH;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wile-dovecot-unit-"));
  ctx = testContext(tmp, "mail.example");
  stubs = installStubs(tmp, ["doveconf", "doveadm"]);
  process.env.PATH = `${stubs.bin}:${savedPath}`;
});

after(() => {
  process.env.PATH = savedPath;
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => stubs.reset());

const fromArgv = (argv: string[]) => configFromArgv(dovecotKind, argv);

describe("dovecot options", () => {
  test("registered, with its own options", () => {
    assert.equal(targetKind("dovecot"), dovecotKind);
    assert.deepEqual(
      targetOptions(dovecotKind).map((o) => o.name),
      ["dovecot-config", "dovecot-cert", "dovecot-key", "dovecot-reload", "dovecot-verify"],
    );
  });

  test("nothing given: paths from doveconf, doveadm reload, verify the default", () => {
    assert.deepEqual(fromArgv([]), { kind: "dovecot" });
    assert.equal(
      targetFromEntry(dovecotKind, {}).describe(),
      "dovecot (paths from doveconf, verify 127.0.0.1:993)",
    );
  });

  test("every option", () => {
    assert.deepEqual(
      fromArgv([
        "--dovecot-config",
        "/etc/dovecot2/dovecot.conf",
        "--dovecot-cert",
        "/etc/dovecot/private/mail.pem",
        "--dovecot-key",
        "/etc/dovecot/private/mail.key",
        "--dovecot-reload",
        "sudo doveadm reload",
        "--dovecot-verify",
        "mail.example:143",
      ]),
      {
        kind: "dovecot",
        config: "/etc/dovecot2/dovecot.conf",
        cert: "/etc/dovecot/private/mail.pem",
        key: "/etc/dovecot/private/mail.key",
        reloadCmd: "sudo doveadm reload",
        verify: "mail.example:143:imap",
      },
    );
  });

  test("relative paths are made absolute", () => {
    const c = fromArgv(["--dovecot-config", "d.conf"]);
    assert.equal(c.config, join(process.cwd(), "d.conf"));
  });

  test("verify: IMAPS by default, :143 is STARTTLS, --no-dovecot-verify turns it off", () => {
    assert.equal(fromArgv(["--dovecot-verify", "127.0.0.1"]).verify, "127.0.0.1:993:tls");
    assert.equal(fromArgv(["--dovecot-verify", "127.0.0.1:10143:imap"]).verify, "127.0.0.1:10143:imap");
    assert.equal(fromArgv(["--dovecot-verify", "127.0.0.1:995"]).verify, "127.0.0.1:995:tls");
    assert.equal(fromArgv(["--no-dovecot-verify"]).verify, false);
  });

  test("bad input is a usage error naming the option", () => {
    assert.throws(
      () => fromArgv(["--dovecot-cert", "/x.pem"]),
      usageError(/^--deploy dovecot: --dovecot-cert goes with --dovecot-key$/),
    );
    assert.throws(
      () => fromArgv(["--dovecot-key", "/x.key"]),
      usageError(/^--deploy dovecot: --dovecot-key goes with --dovecot-cert$/),
    );
    assert.throws(
      () => fromArgv(["--dovecot-verify", "127.0.0.1:99999"]),
      usageError(/^--dovecot-verify "127\.0\.0\.1:99999": must be HOST\[:PORT\[:PROTOCOL\]\] \(.*port 99999/),
    );
    assert.throws(
      () => fromArgv(["--dovecot-verify", "127.0.0.1:993:http"]),
      usageError(/^--dovecot-verify "127\.0\.0\.1:993:http": .*unknown protocol http/),
    );
    assert.throws(
      () => fromArgv(["--dovecot-reload", " "]),
      usageError(/^--dovecot-reload "": must be a non-empty string$/),
    );
  });

  test("an option of this kind without --deploy dovecot is a usage error", () => {
    const o = parseOptions(["--dovecot-cert", "/x"], targetOptions(dovecotKind));
    assert.throws(
      () => deployConfigsFromOptions(o, [], [dovecotKind]),
      usageError(/^--dovecot-cert belongs to the dovecot target, but --deploy dovecot was not given$/),
    );
  });

  test("renewal.json round trip", () => {
    const configs = [
      fromArgv([]),
      fromArgv(["--dovecot-config", "/etc/d/dovecot.conf", "--no-dovecot-verify"]),
      fromArgv(["--dovecot-cert", "/c.pem", "--dovecot-key", "/k.pem", "--dovecot-reload", "true"]),
    ];
    assert.deepEqual(deployRoundTrip(dovecotKind, configs), configs);
  });

  test("broken renewal.json entries are refused naming the field", () => {
    const p = (raw: Record<string, unknown>) => valuesFromEntry(dovecotKind, raw, "r.json");
    assert.throws(
      () => p({ cert: "/c" }),
      entryError("r.json", "deploy[0]", /^\(dovecot\) is inconsistent: "cert" goes with "key"\.$/),
    );
    assert.throws(
      () => p({ cert: "c.pem", key: "/k" }),
      entryError("r.json", "deploy[0].cert", /^must be an absolute path\.$/),
    );
    assert.throws(
      () => p({ verify: "x:0" }),
      entryError("r.json", "deploy[0].verify", /^must be HOST\[:PORT\[:PROTOCOL\]\] \(.*port 0 /),
    );
    assert.throws(
      () => p({ reloadCmd: 3 }),
      entryError("r.json", "deploy[0].reloadCmd", /^must be a non-empty string\.$/),
    );
  });
});

describe("where Dovecot reads its certificate", () => {
  test("Dovecot 2.3: ssl_cert/ssl_key '<path', with -c and a local_name filter", async () => {
    stubs.answer("doveconf", "ssl_cert", "</etc/dovecot/private/mail.pem\n");
    stubs.answer("doveconf", "ssl_key", "</etc/dovecot/private/mail.key\n");
    const p = await dovecotPaths({ config: "/etc/d/dovecot.conf" }, "mail.example");
    assert.deepEqual(p, {
      cert: "/etc/dovecot/private/mail.pem",
      key: "/etc/dovecot/private/mail.key",
      certSetting: "ssl_cert",
      keySetting: "ssl_key",
    });
    assert.deepEqual(stubs.calls(), [
      "doveconf -c /etc/d/dovecot.conf -f lname=mail.example -h ssl_cert",
      "doveconf -c /etc/d/dovecot.conf -f lname=mail.example -h ssl_key",
    ]);
  });

  test("no filter for an IP address, no -c without a config", async () => {
    stubs.answer("doveconf", "ssl_cert", "</c.pem\n");
    stubs.answer("doveconf", "ssl_key", "</k.pem\n");
    await dovecotPaths({}, "192.0.2.1");
    assert.deepEqual(stubs.calls(), ["doveconf -h ssl_cert", "doveconf -h ssl_key"]);
  });

  test("Dovecot 2.4: ssl_server_cert_file / ssl_server_key_file when 2.3's names say nothing", async () => {
    stubs.answer("doveconf", "ssl_server_cert_file", "/etc/dovecot/tls/cert.pem\n");
    stubs.answer("doveconf", "ssl_server_key_file", "/etc/dovecot/tls/key.pem\n");
    const p = await dovecotPaths({}, "mail.example");
    assert.equal(p.cert, "/etc/dovecot/tls/cert.pem");
    assert.equal(p.key, "/etc/dovecot/tls/key.pem");
    assert.equal(p.certSetting, "ssl_server_cert_file");
    assert.deepEqual(stubs.calls().slice(1), [
      "doveconf -h ssl_server_cert_file",
      "doveconf -h ssl_server_key_file",
    ]);
  });

  test("explicit paths need no doveconf", async () => {
    const p = await dovecotPaths({ cert: "/a.pem", key: "/a.key" }, "mail.example");
    assert.equal(p.certSetting, "--dovecot-cert");
    assert.deepEqual(stubs.calls(), []);
  });

  test("a PEM written inline cannot be updated", async () => {
    stubs.answer("doveconf", "ssl_cert", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    stubs.answer("doveconf", "ssl_key", "</k.pem\n");
    await assert.rejects(dovecotPaths({}, "mail.example"), /ssl_cert holds the PEM text itself/);
  });

  test("a relative path is refused", async () => {
    stubs.answer("doveconf", "ssl_cert", "<private/mail.pem\n");
    stubs.answer("doveconf", "ssl_key", "</k.pem\n");
    await assert.rejects(dovecotPaths({}, "mail.example"), /not an absolute path/);
  });

  test("nothing configured", async () => {
    await assert.rejects(dovecotPaths({}, "mail.example"), (e: Error) => {
      assert.ok(e instanceof DeployError);
      assert.match(e.message, /doveconf reports no certificate file/);
      assert.match(e.hint ?? "", /--dovecot-cert/);
      return true;
    });
  });

  test("doveconf failing: its error, and what to do", async () => {
    stubs.fail("doveconf", "doveconf: Fatal: open(/nope.conf) failed: No such file or directory\n", 89);
    await assert.rejects(dovecotPaths({ config: "/nope.conf" }, "mail.example"), (e: Error) => {
      assert.ok(e instanceof DeployError);
      assert.match(
        e.message,
        /doveconf -c \/nope.conf .* failed \(exit 89\): doveconf: Fatal: open\(\/nope.conf\)/,
      );
      assert.match(e.hint ?? "", /Is \/nope.conf a Dovecot configuration/);
      return true;
    });
  });

  test("doveconf not installed: names the package", async () => {
    process.env.PATH = stubs.bin.replace(/bin$/, "no-such-dir");
    try {
      await assert.rejects(dovecotPaths({}, "mail.example"), (e: Error) => {
        assert.match(e.message, /doveconf was not found .*is Dovecot installed here\?/);
        assert.match((e as DeployError).hint ?? "", /dovecot-core/);
        return true;
      });
    } finally {
      process.env.PATH = `${stubs.bin}:${savedPath}`;
    }
  });
});

describe("dovecot check and deploy", () => {
  const target = (c: Record<string, unknown>) => targetFromEntry(dovecotKind, { verify: false, ...c });

  test("check: a missing directory fails before anything is written", async () => {
    stubs.answer("doveconf", "ssl_cert", `<${tmp}/no-such-dir/mail.pem\n`);
    stubs.answer("doveconf", "ssl_key", `<${tmp}/no-such-dir/mail.key\n`);
    await assert.rejects(target({}).check(ctx), /does not exist/);
    assert.ok(!stubs.calls().some((c) => c.startsWith("doveadm")));
  });

  test("check: doveadm must exist unless a reload command is given", async () => {
    process.env.PATH = `${stubs.bin.replace(/bin$/, "empty")}`;
    try {
      await assert.rejects(
        target({ cert: join(tmp, "c1.pem"), key: join(tmp, "k1.pem") }).check(ctx),
        /doveadm was not found/,
      );
      await target({ cert: join(tmp, "c1.pem"), key: join(tmp, "k1.pem"), reloadCmd: "true" }).check(ctx);
    } finally {
      process.env.PATH = `${stubs.bin}:${savedPath}`;
    }
  });

  test("deploy: fullchain to ssl_cert, key to ssl_key (keeping an existing file's mode), doveadm -c reload", async () => {
    const cert = join(tmp, "dc.pem");
    const key = join(tmp, "dc.key");
    writeFileSync(key, "old", { mode: 0o640 });
    stubs.answer("doveconf", "ssl_cert", `<${cert}\n`);
    stubs.answer("doveconf", "ssl_key", `<${key}\n`);
    const t = target({ config: "/etc/d/dovecot.conf" });
    await t.check(ctx);
    await t.deploy(ctx);
    assert.equal(readFileSync(cert, "utf8"), ctx.files.fullchainPem);
    assert.equal(readFileSync(key, "utf8"), ctx.files.privkeyPem);
    assert.equal(statSync(key).mode & 0o777, 0o640);
    assert.equal(statSync(cert).mode & 0o777, 0o644);
    assert.deepEqual(stubs.calls().slice(-1), ["doveadm -c /etc/d/dovecot.conf reload"]);
    assert.match(t.describe(), /^dovecot \(.*dc\.pem\)$/);
  });

  test("deploy: one file for both gets key then fullchain, 0600", async () => {
    const both = join(tmp, "both.pem");
    stubs.answer("doveconf", "ssl_cert", `<${both}\n`);
    stubs.answer("doveconf", "ssl_key", `<${both}\n`);
    const t = target({});
    await t.check(ctx);
    await t.deploy(ctx);
    assert.equal(readFileSync(both, "utf8"), ctx.files.privkeyPem + ctx.files.fullchainPem);
    assert.equal(statSync(both).mode & 0o777, 0o600);
    assert.deepEqual(stubs.calls().slice(-1), ["doveadm reload"]);
  });

  test("deploy: a failing reload is a DeployError; the files are in place", async () => {
    const cert = join(tmp, "f.pem");
    const key = join(tmp, "f.key");
    stubs.fail("doveadm", "doveadm: Fatal: Dovecot is not running (read from /run/dovecot/master.pid)\n", 75);
    const t = target({ cert, key });
    await t.check(ctx);
    await assert.rejects(t.deploy(ctx), (e: Error) => {
      assert.ok(e instanceof DeployError);
      assert.match(e.message, /doveadm reload failed \(exit 75\): doveadm: Fatal: Dovecot is not running/);
      assert.match(e.hint ?? "", /new files are in place/);
      return true;
    });
    assert.equal(readFileSync(cert, "utf8"), ctx.files.fullchainPem);
  });

  test("deploy: the operator's reload command runs instead, with the hook environment", async () => {
    const out = join(tmp, "reload.out");
    const t = target({
      cert: join(tmp, "r.pem"),
      key: join(tmp, "r.key"),
      reloadCmd: `echo "$WILE_CERT_NAME $WILE_FULLCHAIN_PATH" > ${out}`,
    });
    await t.check(ctx);
    await t.deploy(ctx);
    assert.equal(readFileSync(out, "utf8"), `mail.example ${ctx.paths.fullchain}\n`);
    assert.ok(!stubs.calls().some((c) => c.startsWith("doveadm")));
  });

  describe("verify", () => {
    let server: Server;
    let port = 0;
    before(async () => {
      server = createServer({ key: ctx.files.privkeyPem, cert: ctx.files.fullchainPem }, (s) => s.end());
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      port = (server.address() as { port: number }).port;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    test("deploy passes when the endpoint serves the new certificate", async () => {
      const t = targetFromEntry(dovecotKind, {
        cert: join(tmp, "v.pem"),
        key: join(tmp, "v.key"),
        reloadCmd: "true",
        verify: `127.0.0.1:${port}:tls`,
      });
      await t.check(ctx);
      await t.deploy(ctx);
      assert.match(t.describe(), new RegExp(`verify 127\\.0\\.0\\.1:${port}`));
    });
  });
});
