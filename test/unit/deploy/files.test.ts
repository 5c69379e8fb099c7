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
import { parseOptions } from "../../../src/cli/options";
import { parseCertificate } from "../../../src/crypto/x509";
import { apacheKind } from "../../../src/deploy/apache";
import { commandKind } from "../../../src/deploy/command";
import {
  checkCommandProgram,
  FILES_OPTIONS,
  filesKind,
  parseMode,
  parseOwnerSpec,
  resolveOwner,
} from "../../../src/deploy/files";
import { nginxKind } from "../../../src/deploy/nginx";
import { type DeployContext, DeployError } from "../../../src/deploy/target";
import { UsageError } from "../../../src/util/errors";
import type { Logger } from "../../../src/util/log";

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
const opts = (argv: string[], specs = FILES_OPTIONS) => parseOptions(argv, specs);

describe("files: settings", () => {
  test("at least one path; relative paths become absolute; round trip through renewal.json", () => {
    assert.throws(() => filesKind.fromOptions(opts(["--owner", "root"])), UsageError);
    const c = filesKind.fromOptions(
      opts([
        "--key-file",
        "k.pem",
        "--fullchain-file",
        "/etc/x/full.pem",
        "--mode",
        "640",
        "--verify",
        "mail.example:587",
      ]),
    );
    assert.deepEqual(c, {
      kind: "files",
      keyFile: resolve("k.pem"),
      fullchainFile: "/etc/x/full.pem",
      mode: "0640",
      verify: "mail.example:587:smtp",
    });
    assert.deepEqual(filesKind.parse(JSON.parse(JSON.stringify(c)), "renewal.json: deploy[0]"), c);
  });
  test("bad values are usage errors", () => {
    assert.throws(() => filesKind.fromOptions(opts(["--key-file", "/a", "--mode", "999"])), UsageError);
    assert.throws(() => filesKind.fromOptions(opts(["--key-file", "/a", "--owner", "a:b:c"])), UsageError);
    assert.throws(
      () => filesKind.fromOptions(opts(["--key-file", "/a", "--cert-file", "/a"])),
      /given for two/,
    );
    assert.throws(() => filesKind.fromOptions(opts(["--key-file", "/a", "--verify", "h:x"])), UsageError);
  });
  test("renewal.json: relative paths and wrong types are refused, naming the field", () => {
    assert.throws(
      () => filesKind.parse({ kind: "files", keyFile: "rel.pem" }, "W"),
      /W\.keyFile: must be an absolute path/,
    );
    assert.throws(() => filesKind.parse({ kind: "files", keyFile: "/k", mode: 7 }, "W"), /W\.mode/);
    assert.throws(() => filesKind.parse({ kind: "files" }, "W"), /needs at least one/);
  });
  test("owner and mode parsing", () => {
    assert.deepEqual(parseOwnerSpec("www-data:ssl-cert"), { user: "www-data", group: "ssl-cert" });
    assert.deepEqual(parseOwnerSpec(":mail"), { user: undefined, group: "mail" });
    assert.equal(parseMode("0o600"), 0o600);
    assert.equal(parseMode("2750"), 0o2750);
  });
  test("owners resolve from /etc/passwd and /etc/group, numeric ids pass", async () => {
    assert.deepEqual(await resolveOwner("root:daemon"), { uid: 0, gid: 1 });
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
    const c = filesKind.fromOptions(
      opts([
        ...["--cert-file", `${d}/cert.pem`, "--key-file", `${d}/key.pem`, "--ca-file", `${d}/chain.pem`],
        ...["--fullchain-file", `${d}/full.pem`, "--combined-file", `${d}/combined.pem`],
        ...["--reload-cmd", `ls ${d} > ${d}/../all-reload.txt`],
      ]),
    );
    const t = filesKind.create(c);
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
    await filesKind.create(filesKind.fromOptions(opts(["--key-file", `${d}/old.key`]))).deploy(ctx);
    assert.equal(mode(`${d}/old.key`), 0o640);
    await filesKind
      .create(filesKind.fromOptions(opts(["--key-file", `${d}/g.key`, "--owner", "root:daemon"])))
      .deploy(ctx);
    assert.equal(mode(`${d}/g.key`), 0o640);
    assert.equal(statSync(`${d}/g.key`).gid, 1);
    await filesKind
      .create(
        filesKind.fromOptions(
          opts(["--key-file", `${d}/old.key`, "--mode", "0400", "--fullchain-file", `${d}/f.pem`]),
        ),
      )
      .deploy(ctx);
    assert.equal(mode(`${d}/old.key`), 0o400);
    assert.equal(mode(`${d}/f.pem`), 0o644, "--mode is for the key files only");
  });

  test("check: a missing directory fails before anything is written", async () => {
    const d = dir("unwritable");
    const t = filesKind.create(
      filesKind.fromOptions(opts(["--cert-file", `${d}/cert.pem`, "--key-file", `${d}/missing/key.pem`])),
    );
    await assert.rejects(
      t.check(ctx),
      (e: unknown) => e instanceof DeployError && /does not exist/.test(e.message),
    );
    assert.deepEqual(readdirSync(d), []);
  });

  test("a failing reload command is a DeployError with its output", async () => {
    const d = dir("reloadfail");
    const t = filesKind.create(
      filesKind.fromOptions(
        opts(["--cert-file", `${d}/cert.pem`, "--reload-cmd", "echo broken config >&2; exit 3"]),
      ),
    );
    await assert.rejects(
      t.deploy(ctx),
      (e: unknown) => e instanceof DeployError && /exit 3/.test(e.message) && /broken config/.test(e.message),
    );
    assert.ok(existsSync(`${d}/cert.pem`));
  });

  test("PKCS#12 output loads with the password written next to it", async () => {
    const d = dir("pfx");
    await filesKind.create(filesKind.fromOptions(opts(["--pfx-file", `${d}/site.pfx`]))).deploy(ctx);
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
    const c = filesKind.fromOptions(
      opts(["--pfx-file", `${d}/old.pfx`, "--pfx-password", "s3cret pw", "--pfx-legacy"]),
    );
    assert.deepEqual(filesKind.parse(JSON.parse(JSON.stringify(c)), "renewal.json"), c);
    await filesKind.create(c).deploy(ctx);
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
      () => filesKind.fromOptions(opts(["--cert-file", `${d}/c.pem`, "--pfx-password", "x"])),
      UsageError,
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
      await filesKind
        .create(
          filesKind.fromOptions(opts(["--fullchain-file", `${d}/f.pem`, "--verify", `127.0.0.1:${port}`])),
        )
        .deploy(ctx);
      assert.ok(infos.some((m) => m.includes(`127.0.0.1:${port} serves the new certificate`)));
    } finally {
      server.close();
    }
  });
});

describe("command", () => {
  const cmdOpts = (argv: string[]) => opts(argv, commandKind.options);
  test("settings", () => {
    assert.throws(() => commandKind.fromOptions(cmdOpts([])), /needs --deploy-cmd/);
    assert.throws(
      () => commandKind.fromOptions(cmdOpts(["--deploy-cmd", "x", "--deploy-timeout", "0"])),
      UsageError,
    );
    const c = commandKind.fromOptions(cmdOpts(["--deploy-cmd", "/bin/true", "--deploy-timeout", "5"]));
    assert.deepEqual(c, { kind: "command", command: "/bin/true", timeout: 5 });
    assert.deepEqual(commandKind.parse(JSON.parse(JSON.stringify(c)), "W"), c);
    assert.throws(
      () => commandKind.parse({ kind: "command", command: "x", timeout: "5" }, "W"),
      /W\.timeout/,
    );
  });
  test("gets every variable", async () => {
    const out = join(tmp, "env.txt");
    const t = commandKind.create(commandKind.fromOptions(cmdOpts(["--deploy-cmd", `env > ${out}`])));
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
      commandKind.create({ kind: "command", command: "exit 7" }).deploy(ctx),
      (e: unknown) => e instanceof DeployError && /exit 7/.test(e.message),
    );
    await assert.rejects(
      commandKind.create({ kind: "command", command: "sleep 5", timeout: 1 }).deploy(ctx),
      /timed out after 1 s/,
    );
  });
});

describe("nginx and apache", () => {
  const nOpts = (argv: string[]) => opts(argv, [...nginxKind.options, ...apacheKind.options]);
  test("defaults, --no-nginx-verify, cert and key together", () => {
    assert.deepEqual(nginxKind.fromOptions(nOpts([])), { kind: "nginx" });
    assert.deepEqual(nginxKind.fromOptions(nOpts(["--no-nginx-verify"])), { kind: "nginx", verify: false });
    assert.deepEqual(
      nginxKind.fromOptions(
        nOpts(["--nginx-cert", "/e/c.pem", "--nginx-key", "/e/k.pem", "--nginx-verify", "10.0.0.1"]),
      ),
      { kind: "nginx", cert: "/e/c.pem", key: "/e/k.pem", verify: "10.0.0.1:443:tls" },
    );
    assert.throws(() => nginxKind.fromOptions(nOpts(["--nginx-cert", "/e/c.pem"])), /go together/);
    const a = apacheKind.fromOptions(
      nOpts(["--apache-reload", "systemctl reload apache2", "--no-apache-verify"]),
    );
    assert.deepEqual(a, { kind: "apache", reloadCmd: "systemctl reload apache2", verify: false });
    assert.deepEqual(apacheKind.parse(JSON.parse(JSON.stringify(a)), "W"), a);
    assert.equal(
      nginxKind.create({ kind: "nginx" }).describe(),
      "nginx (wile's own paths, verify 127.0.0.1:443)",
    );
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
      const c = nginxKind.fromOptions(
        nOpts([
          "--nginx-cert",
          `${d}/c.pem`,
          "--nginx-key",
          `${d}/k.pem`,
          "--nginx-reload",
          "true",
          "--nginx-verify",
          `127.0.0.1:${port}`,
        ]),
      );
      const t = nginxKind.create(c);
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
    const t = nginxKind.create({ kind: "nginx", reloadCmd: "true", verify: `127.0.0.1:${port}:tls` });
    await assert.rejects(
      t.deploy(ctx),
      new RegExp(`cannot check nginx on 127\\.0\\.0\\.1:${port}: connection refused`),
    );
    await assert.rejects(
      nginxKind.create({ kind: "nginx", reloadCmd: "no-such-nginx-wile -s reload" }).check(ctx),
      /nginx: reload: the program no-such-nginx-wile was not found/,
    );
  });
});
