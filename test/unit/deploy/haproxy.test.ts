import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseCertificate } from "../../../src/crypto/x509";
import { type HaproxyConfig, HaproxyTarget, haproxyKind, runtimeApi } from "../../../src/deploy/haproxy";
import { fullchainThenKey, keyThenFullchain } from "../../../src/deploy/pem-bundle";
import { targetKind } from "../../../src/deploy/registry";
import type { DeployContext } from "../../../src/deploy/target";
import { silentLogger } from "../../../src/util/log";
import {
  configFromArgv,
  entryError,
  targetFromEntry,
  usageError,
  valuesFromEntry,
} from "../../helpers/deploy-kinds";
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

const fromArgv = (argv: string[]) => configFromArgv(haproxyKind, argv);

describe("haproxy options", () => {
  test("is registered", () => {
    assert.equal(targetKind("haproxy"), haproxyKind);
  });

  test("socket: hot update, verify 127.0.0.1:443 over TLS by default", () => {
    const c = fromArgv(["--haproxy-pem", "/etc/haproxy/x.pem", "--haproxy-socket", "/run/h.sock"]);
    assert.deepEqual(c, { kind: "haproxy", pem: "/etc/haproxy/x.pem", socket: "/run/h.sock" });
    assert.equal(
      targetFromEntry(haproxyKind, c).describe(),
      "haproxy (/etc/haproxy/x.pem, runtime API /run/h.sock, verify 127.0.0.1:443)",
    );
  });

  test("reload command, another verify address, or none", () => {
    assert.deepEqual(
      fromArgv([
        "--haproxy-pem",
        "/etc/haproxy/x.pem",
        "--haproxy-reload",
        "systemctl reload haproxy",
        "--haproxy-verify",
        "192.0.2.1:8443",
      ]),
      {
        kind: "haproxy",
        pem: "/etc/haproxy/x.pem",
        reload: "systemctl reload haproxy",
        verify: "192.0.2.1:8443:tls",
      },
    );
    const off = fromArgv(["--haproxy-pem", "/x.pem", "--haproxy-socket", "/s", "--no-haproxy-verify"]);
    assert.equal(off.verify, false);
    assert.equal(targetFromEntry(haproxyKind, off).describe(), "haproxy (/x.pem, runtime API /s, no verify)");
  });

  test("a relative --haproxy-socket is made absolute; --haproxy-pem is kept as written on the crt line", () => {
    assert.deepEqual(fromArgv(["--haproxy-pem", "/x.pem", "--haproxy-socket", "run/h.sock"]), {
      kind: "haproxy",
      pem: "/x.pem",
      socket: resolve("run/h.sock"),
    });
    assert.throws(
      () => fromArgv(["--haproxy-pem", "x.pem", "--haproxy-socket", "/s"]),
      usageError(/^--haproxy-pem "x\.pem": must be an absolute path, spelled as on the crt line$/),
    );
  });

  test("bad input is a usage error naming the option", () => {
    const bad: Array<[string[], RegExp]> = [
      [["--haproxy-socket", "/s"], /^--deploy haproxy needs --haproxy-pem PATH$/],
      [
        ["--haproxy-pem", "rel/x.pem", "--haproxy-socket", "/s"],
        /^--haproxy-pem "rel\/x\.pem": must be an absolute path/,
      ],
      [
        ["--haproxy-pem", "/x.pem/", "--haproxy-socket", "/s"],
        /^--haproxy-pem "\/x\.pem\/": names a directory; give the file$/,
      ],
      [
        ["--haproxy-pem", "/x.pem"],
        /^--deploy haproxy: give --haproxy-socket PATH \(hot update over the runtime API\) or --haproxy-reload CMD, /,
      ],
      [
        ["--haproxy-pem", "/x.pem", "--haproxy-socket", "/s", "--haproxy-reload", "r"],
        /^--deploy haproxy: give --haproxy-socket \(hot update\) or --haproxy-reload, not both$/,
      ],
      [
        ["--haproxy-pem", "/x.pem", "--haproxy-socket", "/s", "--haproxy-verify", "a b"],
        /^--haproxy-verify "a b": must be HOST\[:PORT\[:PROTOCOL\]\] \(invalid endpoint "a b": /,
      ],
      [
        ["--haproxy-pem", "/a b.pem", "--haproxy-socket", "/s"],
        /^--haproxy-pem "\/a b\.pem": must not contain white space/,
      ],
    ];
    for (const [argv, re] of bad) assert.throws(() => fromArgv(argv), usageError(re), argv.join(" "));
  });

  test("renewal.json round trip", () => {
    const configs = [
      fromArgv(["--haproxy-pem", "/x.pem", "--haproxy-socket", "/s"]),
      fromArgv(["--haproxy-pem", "/x.pem", "--haproxy-reload", "r", "--no-haproxy-verify"]),
      fromArgv(["--haproxy-pem", "/x.pem", "--haproxy-reload", "r", "--haproxy-verify", "[::1]:8443"]),
    ];
    assert.deepEqual(deployRoundTrip(haproxyKind, configs), configs);
  });

  test("a broken stored entry names the field", () => {
    assert.throws(
      () => valuesFromEntry(haproxyKind, { socket: "/s" }, "r.json"),
      entryError("r.json", "deploy[0].pem", /^is missing\.$/),
    );
    assert.throws(
      () => valuesFromEntry(haproxyKind, { pem: "/x", socket: "/s", reload: "r" }, "w"),
      entryError(
        "w",
        "deploy[0]",
        /^\(haproxy\) is inconsistent: give "socket" \(hot update\) or "reload", not both\.$/,
      ),
    );
    assert.throws(
      () => valuesFromEntry(haproxyKind, { pem: "/x" }, "w"),
      entryError("w", "deploy[0]", /^\(haproxy\) is inconsistent: give "socket" PATH .* or "reload" CMD, /),
    );
    assert.throws(
      () => valuesFromEntry(haproxyKind, { pem: "/x", socket: "s" }, "w"),
      entryError("w", "deploy[0].socket", /^must be an absolute path\.$/),
    );
    assert.throws(
      () => valuesFromEntry(haproxyKind, { pem: "/x", socket: "/s", verify: 3 }, "w"),
      entryError("w", "deploy[0].verify", /^must be HOST\[:PORT\[:PROTOCOL\]\] or false\.$/),
    );
  });

  test("combined PEM: full chain then key, no blank lines, no CR", () => {
    const pem = fullchainThenKey({ fullchainPem: "A\r\n\r\nB\n", privkeyPem: "\nK\n" });
    assert.equal(pem, "A\nB\nK\n");
    assert.equal(keyThenFullchain({ fullchainPem: "A\r\n\r\nB\n", privkeyPem: "\nK" }), "K\nA\nB\n");
    const real = fullchainThenKey(ctx.files);
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
      const t = targetFromEntry(haproxyKind, { pem: pemPath, socket: api.path, verify: false });
      assert.match(t.describe(), /haproxy \(.*site\.pem, runtime API .*, no verify\)/);
      await t.check(ctx);
      await t.deploy(ctx);
      const pem = fullchainThenKey(ctx.files);
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
      const t = targetFromEntry(haproxyKind, {
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
      const t = new HaproxyTarget({ pem: pemPath, socket: api.path, verify: false });
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
      const t = new HaproxyTarget({ pem: pemPath, socket: api.path, verify: false });
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
      pem: pemPath,
      reload: `printf %s "$WILE_CERT_NAME" > ${marker}`,
      verify: false,
    });
    await t.check(ctx);
    await t.deploy(ctx);
    assert.equal(readFileSync(marker, "utf8"), "h.example");
    assert.equal(statSync(pemPath).mode & 0o777, 0o600, "a new PEM holding a key is 0600");
    const failing = new HaproxyTarget({ pem: pemPath, reload: "exit 7", verify: false });
    await assert.rejects(failing.deploy(ctx), /haproxy reload: exit 7 failed \(exit 7\)/);
  });

  test("check: an unwritable directory fails before anything", async () => {
    const t = new HaproxyTarget({
      pem: join(tmp, "no-such-dir", "x.pem"),
      reload: "true",
      verify: false,
    } satisfies HaproxyConfig);
    await assert.rejects(t.check(ctx), /does not exist/);
  });
});
