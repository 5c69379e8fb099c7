import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseOptions } from "../../../src/cli/options";
import { parseCertificate } from "../../../src/crypto/x509";
import {
  combinedPem,
  type HaproxyConfig,
  HaproxyTarget,
  haproxyKind,
  runtimeApi,
} from "../../../src/deploy/haproxy";
import { targetKind } from "../../../src/deploy/registry";
import type { DeployContext } from "../../../src/deploy/target";
import { UsageError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { deployRoundTrip } from "../../helpers/renewal";

let tmp = "";
let ctx: DeployContext;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wile-haproxy-unit-"));
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
      "/CN=h.example",
      "-keyout",
      join(tmp, "k.pem"),
      "-out",
      join(tmp, "c.pem"),
    ],
    { stdio: "ignore" },
  );
  const cert = readFileSync(join(tmp, "c.pem"), "utf8");
  const info = parseCertificate(cert);
  const dir = join(tmp, "certs", "h.example");
  ctx = {
    name: "h.example",
    identifiers: [{ type: "dns", value: "h.example" }],
    serverName: "h.example",
    paths: {
      dir,
      privkey: join(dir, "privkey.pem"),
      cert: join(dir, "cert.pem"),
      chain: join(dir, "chain.pem"),
      fullchain: join(dir, "fullchain.pem"),
    },
    files: {
      privkeyPem: readFileSync(join(tmp, "k.pem"), "utf8"),
      certPem: cert,
      chainPem: cert,
      fullchainPem: `${cert}\n${cert}`,
    },
    serialHex: info.serialHex,
    notAfter: info.notAfter,
    leafDer: info.der,
    home: tmp,
    logger: silentLogger,
    // verify does not wait: a test service serves the new certificate already, or never will.
    verifyWaitMs: 0,
  };
});

after(() => rmSync(tmp, { recursive: true, force: true }));

const opts = (argv: string[]) => parseOptions(argv, haproxyKind.options);

describe("haproxy options", () => {
  test("is registered", () => {
    assert.equal(targetKind("haproxy"), haproxyKind);
  });

  test("socket: hot update, verify 127.0.0.1:443 over TLS by default", () => {
    assert.deepEqual(
      haproxyKind.fromOptions(
        opts(["--haproxy-pem", "/etc/haproxy/x.pem", "--haproxy-socket", "/run/h.sock"]),
      ),
      { kind: "haproxy", pem: "/etc/haproxy/x.pem", socket: "/run/h.sock", verify: "127.0.0.1:443:tls" },
    );
  });

  test("reload command, another verify address, or none", () => {
    assert.deepEqual(
      haproxyKind.fromOptions(
        opts([
          "--haproxy-pem",
          "/etc/haproxy/x.pem",
          "--haproxy-reload",
          "systemctl reload haproxy",
          "--haproxy-verify",
          "192.0.2.1:8443",
        ]),
      ),
      {
        kind: "haproxy",
        pem: "/etc/haproxy/x.pem",
        reload: "systemctl reload haproxy",
        verify: "192.0.2.1:8443:tls",
      },
    );
    const off = haproxyKind.fromOptions(
      opts(["--haproxy-pem", "/x.pem", "--haproxy-socket", "/s", "--no-haproxy-verify"]),
    );
    assert.equal(off.verify, false);
  });

  test("bad input is a usage error naming the option", () => {
    const bad: Array<[string[], RegExp]> = [
      [["--haproxy-socket", "/s"], /--haproxy-pem PATH is required/],
      [["--haproxy-pem", "rel/x.pem", "--haproxy-socket", "/s"], /not an absolute path/],
      [["--haproxy-pem", "/x.pem"], /give --haproxy-socket PATH .* or --haproxy-reload/],
      [["--haproxy-pem", "/x.pem", "--haproxy-socket", "/s", "--haproxy-reload", "r"], /not both/],
      [["--haproxy-pem", "/x.pem", "--haproxy-socket", "s"], /--haproxy-socket s is not an absolute path/],
      [["--haproxy-pem", "/x.pem", "--haproxy-socket", "/s", "--haproxy-verify", "a b"], /invalid endpoint/],
      [["--haproxy-pem", "/a b.pem", "--haproxy-socket", "/s"], /white space/],
    ];
    for (const [argv, re] of bad) {
      assert.throws(
        () => haproxyKind.fromOptions(opts(argv)),
        (e: unknown) => e instanceof UsageError && re.test(e.message),
        argv.join(" "),
      );
    }
  });

  test("renewal.json round trip", () => {
    const configs = [
      haproxyKind.fromOptions(opts(["--haproxy-pem", "/x.pem", "--haproxy-socket", "/s"])),
      haproxyKind.fromOptions(
        opts(["--haproxy-pem", "/x.pem", "--haproxy-reload", "r", "--no-haproxy-verify"]),
      ),
    ];
    assert.deepEqual(deployRoundTrip(haproxyKind, configs), configs);
  });

  test("a broken stored entry names the field", () => {
    assert.throws(
      () => haproxyKind.parse({ kind: "haproxy", socket: "/s" }, "r.json: deploy[0]"),
      /"pem" is missing/,
    );
    assert.throws(
      () => haproxyKind.parse({ kind: "haproxy", pem: "/x", socket: "/s", reload: "r" }, "w"),
      /exactly one/,
    );
    assert.throws(
      () => haproxyKind.parse({ kind: "haproxy", pem: "/x", socket: "/s", verify: 3 }, "w"),
      /verify/,
    );
  });

  test("combined PEM: full chain then key, no blank lines, no CR", () => {
    const pem = combinedPem("A\r\n\r\nB\n", "\nK\n");
    assert.equal(pem, "A\nB\nK\n");
    const real = combinedPem(ctx.files.fullchainPem, ctx.files.privkeyPem);
    assert.ok(real.indexOf("BEGIN CERTIFICATE") < real.indexOf("PRIVATE KEY"));
    assert.ok(!/\n\n/.test(real));
  });
});

/**
 * A stand-in for HAProxy's runtime API: reads one command (a payload runs to an empty line), answers
 * from `answer`, closes, and records what it got.
 */
async function fakeRuntimeApi(answer: (command: string) => string | null): Promise<{
  path: string;
  commands: string[];
  close: () => Promise<void>;
}> {
  const path = join(tmp, `api-${Math.random().toString(16).slice(2)}.sock`);
  const commands: string[] = [];
  const server: Server = createServer((sock) => {
    let buf = "";
    sock.on("data", (c: Buffer) => {
      buf += c.toString("utf8");
      const payload = /<<\n/.test(buf);
      const complete = payload ? buf.endsWith("\n\n") : buf.endsWith("\n");
      if (!complete) return;
      commands.push(buf);
      const a = answer(buf);
      if (a === null) return; // never answers
      sock.end(a);
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    commands,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("haproxy runtime API", () => {
  test("check, write the PEM, set + commit ssl cert", async () => {
    const pemPath = join(tmp, "site.pem");
    writeFileSync(pemPath, "old", { mode: 0o640 });
    const api = await fakeRuntimeApi((c) => {
      if (c.startsWith("show ssl cert")) return `# filename\n${pemPath}\n\n`;
      if (c.startsWith("set ssl cert")) return `Transaction created for certificate ${pemPath}!\n\n`;
      if (c.startsWith("commit ssl cert")) return `Committing ${pemPath}.\nSuccess!\n\n`;
      return "Unknown command\n\n";
    });
    try {
      const t = haproxyKind.create({ kind: "haproxy", pem: pemPath, socket: api.path, verify: false });
      assert.match(t.describe(), /haproxy \(.*site\.pem, runtime API .*, no verify\)/);
      await t.check(ctx);
      await t.deploy(ctx);
      const pem = combinedPem(ctx.files.fullchainPem, ctx.files.privkeyPem);
      assert.deepEqual(api.commands, [
        "show ssl cert\n",
        `set ssl cert ${pemPath} <<\n${pem}\n`,
        `commit ssl cert ${pemPath}\n`,
      ]);
      assert.equal(readFileSync(pemPath, "utf8"), pem);
      assert.equal(statSync(pemPath).mode & 0o777, 0o640, "an existing file keeps its mode");
    } finally {
      await api.close();
    }
  });

  test("a certificate HAProxy did not load fails the check, naming what it has", async () => {
    const api = await fakeRuntimeApi(() => "# filename\n/etc/haproxy/other.pem\n*/etc/haproxy/third.pem\n\n");
    try {
      const t = haproxyKind.create({
        kind: "haproxy",
        pem: join(tmp, "nope.pem"),
        socket: api.path,
        verify: false,
      });
      await assert.rejects(
        t.check(ctx),
        /nope\.pem is not a certificate HAProxy has loaded \(it has \/etc\/haproxy\/other\.pem, \*\/etc\/haproxy\/third\.pem\)/,
      );
    } finally {
      await api.close();
    }
  });

  test("an error answer to set ssl cert comes back readable, without the command help", async () => {
    const pemPath = join(tmp, "err.pem");
    const api = await fakeRuntimeApi((c) =>
      c.startsWith("set ssl cert")
        ? "unable to load certificate from file 'x'.\nCan't load the payload\nCan't update x!\n\nUnknown command. Please enter one of the following commands only:\n  abort ssl ca-file <cafile>   : abort\n\n"
        : "",
    );
    try {
      const t = new HaproxyTarget({ kind: "haproxy", pem: pemPath, socket: api.path, verify: false });
      await assert.rejects(t.deploy(ctx), (e: Error) => {
        assert.equal(
          e.message,
          `haproxy: set ssl cert ${pemPath} failed: unable to load certificate from file 'x'. | Can't load the payload | Can't update x!`,
        );
        return true;
      });
      assert.ok(existsSync(pemPath), "the file is written before the hot update");
      assert.equal(api.commands.length, 1);
    } finally {
      await api.close();
    }
  });

  test("a failed commit aborts the transaction", async () => {
    const pemPath = join(tmp, "commit.pem");
    const api = await fakeRuntimeApi((c) =>
      c.startsWith("set")
        ? "Transaction updated for certificate x!\n\n"
        : c.startsWith("commit")
          ? "Committing x.\nError: something broke\n\n"
          : "Transaction aborted for certificate 'x'!\n\n",
    );
    try {
      const t = new HaproxyTarget({ kind: "haproxy", pem: pemPath, socket: api.path, verify: false });
      await assert.rejects(
        t.deploy(ctx),
        /commit ssl cert .* failed: Committing x\. \| Error: something broke/,
      );
      assert.deepEqual(
        api.commands.map((c) => c.split(" ").slice(0, 2).join(" ")),
        ["set ssl", "commit ssl", "abort ssl"],
      );
    } finally {
      await api.close();
    }
  });

  test("no socket, and a socket that never answers", async () => {
    await assert.rejects(
      runtimeApi(join(tmp, "missing.sock"), "show ssl cert"),
      /cannot reach the runtime API at .*missing\.sock: there is no such socket/,
    );
    const api = await fakeRuntimeApi(() => null);
    try {
      await assert.rejects(
        runtimeApi(api.path, "show ssl cert", 300),
        /no complete answer to "show ssl cert"/,
      );
    } finally {
      await api.close();
    }
  });

  test("reload command instead of the socket", async () => {
    const pemPath = join(tmp, "reload.pem");
    const marker = join(tmp, "reloaded");
    const t = new HaproxyTarget({
      kind: "haproxy",
      pem: pemPath,
      reload: `printf %s "$WILE_CERT_NAME" > ${marker}`,
      verify: false,
    });
    await t.check(ctx);
    await t.deploy(ctx);
    assert.equal(readFileSync(marker, "utf8"), "h.example");
    assert.equal(statSync(pemPath).mode & 0o777, 0o600, "a new PEM holding a key is 0600");
    const failing = new HaproxyTarget({ kind: "haproxy", pem: pemPath, reload: "exit 7", verify: false });
    await assert.rejects(failing.deploy(ctx), /haproxy reload: exit 7 failed \(exit 7\)/);
  });

  test("check: an unwritable directory fails before anything", async () => {
    const t = new HaproxyTarget({
      kind: "haproxy",
      pem: join(tmp, "no-such-dir", "x.pem"),
      reload: "true",
      verify: false,
    } satisfies HaproxyConfig);
    await assert.rejects(t.check(ctx), /does not exist/);
  });
});
