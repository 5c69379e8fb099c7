import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { createSecureContext, createServer as createTlsServer } from "node:tls";
import { parseCertificate } from "../../../src/crypto/x509";
import { apacheKind } from "../../../src/deploy/apache";
import { commandKind } from "../../../src/deploy/command";
import { filesKind } from "../../../src/deploy/files";
import { nginxKind } from "../../../src/deploy/nginx";
import { resolveOwner } from "../../../src/deploy/outputs";
import { type DeployContext, DeployError } from "../../../src/deploy/target";
import type { Logger } from "../../../src/util/log";
import { checkCommandProgram } from "../../../src/util/programs";
import {
  configFromArgv,
  entryError,
  storedFromEntry,
  targetFromArgv,
  targetFromEntry,
  usageError,
  valuesFromEntry,
} from "../../helpers/deploy-kinds";

let tmp = "";
let ctx: DeployContext;
const infos: string[] = [];
const logger: Logger = { info: (m) => infos.push(m), warn: () => {}, debug: () => {} };

function selfSigned(name: string): { key: string; cert: string } {
  const key = join(tmp, `${name}.key`);
  const cert = join(tmp, `${name}.crt`);
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"].concat([
      "-subj",
      `/CN=${name}`,
      "-addext",
      `subjectAltName=DNS:${name}`,
      "-keyout",
      key,
      "-out",
      cert,
    ]),
    { stdio: "ignore" },
  );
  return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
}

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wile-files-"));
  const leaf = selfSigned("site.example.test");
  const issuer = selfSigned("issuer.example.test");
  const info = parseCertificate(leaf.cert);
  const home = join(tmp, "home");
  ctx = {
    name: "site.example.test",
    identifiers: [
      { type: "dns", value: "site.example.test" },
      { type: "dns", value: "www.site.example.test" },
    ],
    serverName: "site.example.test",
    paths: {
      dir: `${home}/certs/site.example.test`,
      privkey: `${home}/certs/site.example.test/privkey.pem`,
      cert: `${home}/certs/site.example.test/cert.pem`,
      chain: `${home}/certs/site.example.test/chain.pem`,
      fullchain: `${home}/certs/site.example.test/fullchain.pem`,
    },
    files: {
      privkeyPem: leaf.key,
      certPem: leaf.cert,
      chainPem: issuer.cert,
      fullchainPem: leaf.cert + issuer.cert,
    },
    serialHex: info.serialHex,
    notAfter: info.notAfter,
    leafDer: info.der,
    home,
    logger,
    // verify does not wait: a test service serves the new certificate already, or never will.
    verifyWaitMs: 0,
  };
});

after(() => rmSync(tmp, { recursive: true, force: true }));

function dir(name: string): string {
  const d = join(tmp, name);
  execFileSync("mkdir", ["-p", d]);
  return d;
}

const mode = (p: string) => statSync(p).mode & 0o7777;
const fromArgv = (argv: string[]) => configFromArgv(filesKind, argv);
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

describe("files: settings", () => {
  test("at least one path; relative paths become absolute; round trip through renewal.json", () => {
    assert.throws(
      () => fromArgv(["--owner", "root"]),
      usageError(
        /^--deploy files: needs at least one path: --cert-file, --ca-file, --fullchain-file, --key-file, --combined-file, --pfx-file$/,
      ),
    );
    const c = fromArgv([
      "--key-file",
      "k.pem",
      "--fullchain-file",
      "/etc/x/full.pem",
      "--mode",
      "640",
      "--owner",
      "root:daemon",
      "--verify",
      "mail.example:587",
    ]);
    assert.deepEqual(c, {
      kind: "files",
      keyFile: resolve("k.pem"),
      fullchainFile: "/etc/x/full.pem",
      mode: "0640",
      owner: "root:daemon",
      verify: "mail.example:587:smtp",
    });
    assert.deepEqual(storedFromEntry(filesKind, clone(c)), c);
  });
  test("bad values are usage errors naming the option", () => {
    assert.throws(
      () => fromArgv(["--key-file", "/a", "--mode", "999"]),
      usageError(/^--mode "999": must be an octal mode such as 0600 or 0640$/),
    );
    assert.throws(
      () => fromArgv(["--key-file", "/a", "--owner", "a:b:c"]),
      usageError(/^--owner "a:b:c": must be USER, USER:GROUP or :GROUP \(for example root:ssl-cert\)$/),
    );
    assert.throws(
      () => fromArgv(["--key-file", "/a", "--cert-file", "/a"]),
      usageError(/^--deploy files: \/a is given for two different files$/),
    );
    assert.throws(
      () => fromArgv(["--key-file", "/a", "--verify", "h:x"]),
      usageError(
        /^--verify "h:x": must be HOST\[:PORT\[:PROTOCOL\]\] \(invalid endpoint "h:x": port x is not/,
      ),
    );
  });
  test("renewal.json: relative paths and wrong types are refused, naming the field", () => {
    assert.throws(
      () => valuesFromEntry(filesKind, { keyFile: "rel.pem" }, "W"),
      entryError("W", "deploy[0].keyFile", /^must be an absolute path\.$/),
    );
    assert.throws(
      () => valuesFromEntry(filesKind, { keyFile: "/k", mode: 7 }, "W"),
      entryError("W", "deploy[0].mode", /^must be an octal mode/),
    );
    assert.throws(
      () => valuesFromEntry(filesKind, {}, "W"),
      entryError(
        "W",
        "deploy[0]",
        /^\(files\) is inconsistent: needs at least one path: "certFile", "caFile"/,
      ),
    );
  });
  test("owner and mode settings: accepted forms and their stored form", () => {
    const { owner, mode: modeSetting } = filesKind.settings;
    for (const ok of ["www-data:ssl-cert", ":mail", "root", "1234:5678", "MACHINE$"]) {
      assert.equal(owner.parse(ok), ok);
    }
    for (const bad of ["a:b:c", ":", "-x", "a b"]) assert.throws(() => owner.parse(bad), /must be USER/, bad);
    assert.equal(modeSetting.parse("0o600"), "0600");
    assert.equal(modeSetting.parse("640"), "0640");
    assert.equal(modeSetting.parse("2750"), "02750");
    for (const bad of ["999", "0o8", "64", "rw-r-----", 0o640]) {
      assert.throws(() => modeSetting.parse(bad), /must be an octal mode/, String(bad));
    }
  });
  test("owners resolve from /etc/passwd and /etc/group, numeric ids pass", async () => {
    assert.deepEqual(await resolveOwner("root:daemon"), { uid: 0, gid: 1 });
    assert.deepEqual(await resolveOwner(":daemon"), { gid: 1 });
    assert.deepEqual(await resolveOwner("root"), { uid: 0 });
    assert.deepEqual(await resolveOwner("1234:5678"), { uid: 1234, gid: 5678 });
    await assert.rejects(
      resolveOwner("no-such-user-wile"),
      (e: unknown) => e instanceof DeployError && /no user/.test(e.message),
    );
    await assert.rejects(resolveOwner(":no-such-group-wile"), /no group no-such-group-wile/);
  });
  test("reload program must exist when the command starts with a plain word", async () => {
    await checkCommandProgram("true", "x");
    await checkCommandProgram("sh -c 'exit 0'", "x");
    await checkCommandProgram("FOO=1 whatever", "x");
    await assert.rejects(
      checkCommandProgram("no-such-program-wile --reload", "files: --reload-cmd"),
      /no-such-program-wile was not found/,
    );
    await assert.rejects(checkCommandProgram("/nonexistent/bin/reload", "x"), /does not exist/);
  });
});

describe("files: deploy", () => {
  test("every file, combined = key + fullchain, key 0600, others 0644, reload runs after", async () => {
    const d = dir("all");
    const t = targetFromArgv(filesKind, [
      ...["--cert-file", `${d}/cert.pem`, "--key-file", `${d}/key.pem`, "--ca-file", `${d}/chain.pem`],
      ...["--fullchain-file", `${d}/full.pem`, "--combined-file", `${d}/combined.pem`],
      ...["--reload-cmd", `ls ${d} > ${d}/../all-reload.txt`],
    ]);
    await t.check(ctx);
    await t.deploy(ctx);
    assert.equal(readFileSync(`${d}/cert.pem`, "utf8"), ctx.files.certPem);
    assert.equal(readFileSync(`${d}/key.pem`, "utf8"), ctx.files.privkeyPem);
    assert.equal(readFileSync(`${d}/chain.pem`, "utf8"), ctx.files.chainPem);
    assert.equal(readFileSync(`${d}/full.pem`, "utf8"), ctx.files.fullchainPem);
    assert.equal(readFileSync(`${d}/combined.pem`, "utf8"), ctx.files.privkeyPem + ctx.files.fullchainPem);
    assert.equal(mode(`${d}/key.pem`), 0o600);
    assert.equal(mode(`${d}/combined.pem`), 0o600);
    assert.equal(mode(`${d}/cert.pem`), 0o644);
    assert.deepEqual(
      readFileSync(join(tmp, "all-reload.txt"), "utf8").trim().split("\n").sort(),
      ["chain.pem", "cert.pem", "combined.pem", "full.pem", "key.pem"].sort(),
    );
  });

  test("an existing file keeps its mode; a group gives 0640 to a new key; --mode wins", async () => {
    const d = dir("modes");
    writeFileSync(`${d}/old.key`, "old");
    chmodSync(`${d}/old.key`, 0o640);
    await targetFromArgv(filesKind, ["--key-file", `${d}/old.key`]).deploy(ctx);
    assert.equal(mode(`${d}/old.key`), 0o640);
    await targetFromArgv(filesKind, ["--key-file", `${d}/g.key`, "--owner", "root:daemon"]).deploy(ctx);
    assert.equal(mode(`${d}/g.key`), 0o640);
    assert.equal(statSync(`${d}/g.key`).gid, 1);
    await targetFromArgv(filesKind, [
      ...["--key-file", `${d}/old.key`, "--mode", "0400", "--fullchain-file", `${d}/f.pem`],
    ]).deploy(ctx);
    assert.equal(mode(`${d}/old.key`), 0o400);
    assert.equal(mode(`${d}/f.pem`), 0o644, "--mode is for the key files only");
  });

  test("check: a missing directory fails before anything is written", async () => {
    const d = dir("unwritable");
    const t = targetFromArgv(filesKind, [
      "--cert-file",
      `${d}/cert.pem`,
      "--key-file",
      `${d}/missing/key.pem`,
    ]);
    await assert.rejects(
      t.check(ctx),
      (e: unknown) => e instanceof DeployError && /does not exist/.test(e.message),
    );
    assert.deepEqual(readdirSync(d), []);
  });

  test("a failing reload command is a DeployError with its output", async () => {
    const d = dir("reloadfail");
    const t = targetFromArgv(filesKind, [
      ...["--cert-file", `${d}/cert.pem`, "--reload-cmd", "echo broken config >&2; exit 3"],
    ]);
    await assert.rejects(
      t.deploy(ctx),
      (e: unknown) => e instanceof DeployError && /exit 3/.test(e.message) && /broken config/.test(e.message),
    );
    assert.ok(existsSync(`${d}/cert.pem`));
  });

  test("PKCS#12 output loads with the password written next to it", async () => {
    const d = dir("pfx");
    await targetFromArgv(filesKind, ["--pfx-file", `${d}/site.pfx`]).deploy(ctx);
    const pass = readFileSync(`${d}/site.pfx.pass`, "utf8").trim();
    assert.equal(mode(`${d}/site.pfx`), 0o600);
    assert.equal(mode(`${d}/site.pfx.pass`), 0o600);
    createSecureContext({ pfx: readFileSync(`${d}/site.pfx`), passphrase: pass });
    const info = execFileSync(
      "openssl",
      ["pkcs12", "-in", `${d}/site.pfx`, "-passin", `pass:${pass}`, "-nokeys"],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    assert.match(info, /subject=CN ?= ?site\.example\.test/);
  });

  test("--pfx-password and --pfx-legacy: that password, 3DES/SHA-1, no password file; stored for renewals", async () => {
    const d = dir("pfx-legacy");
    const c = fromArgv(["--pfx-file", `${d}/old.pfx`, "--pfx-password", "s3cret pw", "--pfx-legacy"]);
    assert.deepEqual(c, {
      kind: "files",
      pfxFile: `${d}/old.pfx`,
      pfxPassword: "s3cret pw",
      pfxLegacy: true,
    });
    assert.deepEqual(storedFromEntry(filesKind, clone(c)), c);
    await targetFromEntry(filesKind, c).deploy(ctx);
    assert.equal(existsSync(`${d}/old.pfx.pass`), false);
    createSecureContext({ pfx: readFileSync(`${d}/old.pfx`), passphrase: "s3cret pw" });
    const macInfo = execFileSync(
      "sh",
      ["-c", `openssl pkcs12 -in ${d}/old.pfx -passin 'pass:s3cret pw' -info -noout -legacy 2>&1`],
      { encoding: "utf8" },
    );
    assert.match(macInfo, /MAC: sha1/i);
    assert.match(macInfo, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC/);
    assert.throws(
      () => fromArgv(["--cert-file", `${d}/c.pem`, "--pfx-password", "x"]),
      usageError(/^--deploy files: --pfx-password goes with --pfx-file$/),
    );
    assert.throws(
      () => fromArgv(["--cert-file", `${d}/c.pem`, "--pfx-legacy"]),
      usageError(/^--deploy files: --pfx-legacy goes with --pfx-file$/),
    );
    assert.throws(
      () => valuesFromEntry(filesKind, { certFile: `${d}/c.pem`, pfxPassword: "x" }, "W"),
      entryError("W", "deploy[0]", /^\(files\) is inconsistent: "pfxPassword" goes with "pfxFile"\.$/),
    );
  });

  test("--verify checks the endpoint after the reload", async () => {
    const server = createTlsServer({ key: ctx.files.privkeyPem, cert: ctx.files.fullchainPem });
    server.on("tlsClientError", () => {});
    const port = await new Promise<number>((r) =>
      server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)),
    );
    try {
      const d = dir("verify");
      infos.length = 0;
      await targetFromArgv(filesKind, [
        "--fullchain-file",
        `${d}/f.pem`,
        "--verify",
        `127.0.0.1:${port}`,
      ]).deploy(ctx);
      assert.ok(infos.some((m) => m.includes(`127.0.0.1:${port} serves the new certificate`)));
    } finally {
      server.close();
    }
  });
});

describe("command", () => {
  test("settings", () => {
    assert.throws(
      () => configFromArgv(commandKind, []),
      usageError(/^--deploy command needs --deploy-cmd CMD$/),
    );
    assert.throws(
      () => configFromArgv(commandKind, ["--deploy-cmd", "x", "--deploy-timeout", "0"]),
      usageError(/^--deploy-timeout "0": must be whole seconds from 1 to 3600$/),
    );
    const c = configFromArgv(commandKind, ["--deploy-cmd", "/bin/true", "--deploy-timeout", "5"]);
    assert.deepEqual(c, { kind: "command", command: "/bin/true", timeout: 5 });
    assert.deepEqual(storedFromEntry(commandKind, clone(c)), c);
    assert.deepEqual(
      configFromArgv(commandKind, ["--deploy-cmd", "/bin/true"]),
      { kind: "command", command: "/bin/true" },
      "the default timeout is not stored",
    );
    assert.deepEqual(valuesFromEntry(commandKind, { command: "/bin/true" }), {
      command: "/bin/true",
      timeout: 60,
    });
    assert.throws(
      () => valuesFromEntry(commandKind, { command: "x", timeout: "five" }, "W"),
      entryError("W", "deploy[0].timeout", /^must be whole seconds from 1 to 3600\.$/),
    );
    assert.throws(
      () => valuesFromEntry(commandKind, { command: "x", timeout: 3601 }, "W"),
      entryError("W", "deploy[0].timeout", /^must be whole seconds from 1 to 3600\.$/),
    );
    assert.throws(
      () => valuesFromEntry(commandKind, {}, "W"),
      entryError("W", "deploy[0].command", /^is missing\.$/),
    );
  });
  test("gets every variable", async () => {
    const out = join(tmp, "env.txt");
    const t = targetFromArgv(commandKind, ["--deploy-cmd", `env > ${out}`]);
    await t.check(ctx);
    await t.deploy(ctx);
    const env = Object.fromEntries(
      readFileSync(out, "utf8")
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const p = ctx.paths;
    const want: Record<string, string> = {
      WILE_CERT_NAME: "site.example.test",
      WILE_DOMAINS: "site.example.test www.site.example.test",
      WILE_CERT_PATH: p.cert,
      WILE_KEY_PATH: p.privkey,
      WILE_CHAIN_PATH: p.chain,
      WILE_FULLCHAIN_PATH: p.fullchain,
      RENEWED_LINEAGE: p.dir,
      RENEWED_DOMAINS: "site.example.test www.site.example.test",
      CERT_PATH: p.cert,
      CERT_KEY_PATH: p.privkey,
      CA_CERT_PATH: p.chain,
      CERT_FULLCHAIN_PATH: p.fullchain,
    };
    for (const [k, v] of Object.entries(want)) assert.equal(env[k], v, k);
  });
  test("non-zero exit and timeout fail the deploy", async () => {
    await assert.rejects(
      targetFromEntry(commandKind, { command: "exit 7" }).deploy(ctx),
      (e: unknown) => e instanceof DeployError && /exit 7/.test(e.message),
    );
    await assert.rejects(
      targetFromEntry(commandKind, { command: "sleep 5", timeout: 1 }).deploy(ctx),
      /timed out after 1 s/,
    );
  });
});

describe("nginx and apache", () => {
  const nginx = (argv: string[]) => configFromArgv(nginxKind, argv);
  test("defaults, --no-nginx-verify, cert and key together", () => {
    assert.deepEqual(nginx([]), { kind: "nginx" });
    assert.equal(valuesFromEntry(nginxKind, {}).reloadCmd, "nginx -s reload");
    assert.equal(valuesFromEntry(apacheKind, {}).reloadCmd, "apachectl -k graceful");
    assert.equal(
      targetFromEntry(apacheKind, {}).describe(),
      "apache (wile's own paths, verify 127.0.0.1:443)",
    );
    assert.deepEqual(nginx(["--no-nginx-verify"]), { kind: "nginx", verify: false });
    assert.deepEqual(
      nginx(["--nginx-cert", "/e/c.pem", "--nginx-key", "/e/k.pem", "--nginx-verify", "10.0.0.1"]),
      { kind: "nginx", cert: "/e/c.pem", key: "/e/k.pem", verify: "10.0.0.1:443:tls" },
    );
    assert.deepEqual(nginx(["--nginx-cert", "c.pem", "--nginx-key", "k.pem"]), {
      kind: "nginx",
      cert: resolve("c.pem"),
      key: resolve("k.pem"),
    });
    assert.throws(
      () => nginx(["--nginx-cert", "/e/c.pem"]),
      usageError(/^--deploy nginx: --nginx-cert goes with --nginx-key$/),
    );
    assert.throws(
      () => nginx(["--nginx-key", "/e/k.pem"]),
      usageError(/^--deploy nginx: --nginx-key goes with --nginx-cert$/),
    );
    assert.throws(
      () => nginx(["--nginx-cert", "/e/c.pem", "--nginx-key", "/e/c.pem"]),
      usageError(/^--deploy nginx: --nginx-cert and --nginx-key name the same file$/),
    );
    assert.throws(
      () => nginx(["--nginx-reload", " "]),
      usageError(/^--nginx-reload "": must be a non-empty string$/),
    );
    const a = configFromArgv(apacheKind, [
      "--apache-reload",
      "systemctl reload apache2",
      "--no-apache-verify",
    ]);
    assert.deepEqual(a, { kind: "apache", reloadCmd: "systemctl reload apache2", verify: false });
    assert.deepEqual(storedFromEntry(apacheKind, clone(a)), a);
    assert.throws(
      () => valuesFromEntry(apacheKind, { cert: "/c" }, "W"),
      entryError("W", "deploy[0]", /^\(apache\) is inconsistent: "cert" goes with "key"\.$/),
    );
    assert.equal(targetFromEntry(nginxKind, {}).describe(), "nginx (wile's own paths, verify 127.0.0.1:443)");
  });

  test("copies fullchain and key, reloads, verifies; a mismatch names the directive", async () => {
    const d = dir("nginx");
    const other = selfSigned("other.example.test");
    let context = createSecureContext({ key: other.key, cert: other.cert });
    const server = createTlsServer({ SNICallback: (_n, cb) => cb(null, context) });
    server.on("tlsClientError", () => {});
    const port = await new Promise<number>((r) =>
      server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)),
    );
    try {
      const t = targetFromArgv(nginxKind, [
        "--nginx-cert",
        `${d}/c.pem`,
        "--nginx-key",
        `${d}/k.pem`,
        "--nginx-reload",
        "true",
        "--nginx-verify",
        `127.0.0.1:${port}`,
      ]);
      await t.check(ctx);
      // Still the other certificate: verify fails (at once: the context's verifyWaitMs is 0).
      const failing = t.deploy(ctx);
      await assert.rejects(failing, (e: unknown) => {
        assert.ok(e instanceof DeployError);
        assert.match(
          e.message,
          /^nginx on 127\.0\.0\.1:\d+ still serves serial [0-9A-F]+ \(expires \d{4}-\d\d-\d\d\) after reload; does ssl_certificate point at /,
        );
        assert.ok(e.message.includes(`${d}/c.pem`));
        return true;
      });
      assert.equal(readFileSync(`${d}/c.pem`, "utf8"), ctx.files.fullchainPem);
      assert.equal(readFileSync(`${d}/k.pem`, "utf8"), ctx.files.privkeyPem);
      assert.equal(mode(`${d}/k.pem`), 0o600);
      context = createSecureContext({ key: ctx.files.privkeyPem, cert: ctx.files.fullchainPem });
      await t.deploy(ctx);
    } finally {
      server.close();
    }
  });

  test("a closed port is a connection error; a missing reload program fails the check", async () => {
    const s = createNetServer();
    const port = await new Promise<number>((r) =>
      s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)),
    );
    await new Promise((r) => s.close(r));
    const t = targetFromEntry(nginxKind, { reloadCmd: "true", verify: `127.0.0.1:${port}:tls` });
    await assert.rejects(
      t.deploy(ctx),
      new RegExp(`cannot check nginx on 127\\.0\\.0\\.1:${port}: connection refused`),
    );
    await assert.rejects(
      targetFromEntry(nginxKind, { reloadCmd: "no-such-nginx-wile -s reload" }).check(ctx),
      /nginx: reload: the program no-such-nginx-wile was not found/,
    );
  });
});
