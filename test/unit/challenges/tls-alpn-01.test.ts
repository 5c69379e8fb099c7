import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { connect, createServer as createTlsServer } from "node:tls";
import type { ChallengeContext } from "../../../src/acme/solver";
import { listenError } from "../../../src/challenges/listen-errors";
import {
  ACME_IDENTIFIER_OID,
  challengeCertificate,
  sniName,
  TlsAlpnSolver,
} from "../../../src/challenges/tls-alpn-01";
import * as der from "../../../src/crypto/der";
import { toPem } from "../../../src/crypto/pem";
import { UsageError, WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";

const KEY_AUTH = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;

/** The extensions of a certificate, by OID, read with the project's DER reader. */
function extensions(certDer: Buffer): Map<string, { critical: boolean; value: Buffer }> {
  const [tbs] = der.children(der.readDer(certDer));
  const wrapped = der.children(tbs as der.DerNode).find((n) => n.tagClass === "context" && n.tagNumber === 3);
  assert.ok(wrapped, "the certificate has extensions [3]");
  const [list] = der.children(wrapped);
  const out = new Map<string, { critical: boolean; value: Buffer }>();
  for (const ext of der.children(list as der.DerNode)) {
    const parts = der.children(ext);
    const critical = parts.length === 3 && parts[1]?.content[0] === 0xff;
    out.set(der.decodeOid((parts[0] as der.DerNode).content), {
      critical,
      value: (parts[parts.length - 1] as der.DerNode).content,
    });
  }
  return out;
}

describe("RFC 8737 3: the tls-alpn-01 certificate", () => {
  test("its only subjectAltName is the DNS name; acmeIdentifier is critical and holds OCTET STRING(32) of SHA-256(key authorization)", () => {
    const certDer = challengeCertificate({ type: "dns", value: "a.example" }, KEY_AUTH, key);
    const x = new X509Certificate(certDer);
    assert.equal(x.subjectAltName, "DNS:a.example");
    assert.ok(x.verify(x.publicKey), "self-signed with its own key");
    assert.ok(x.checkIssued(x));
    const ext = extensions(certDer).get(ACME_IDENTIFIER_OID);
    assert.ok(ext, "id-pe-acmeIdentifier 1.3.6.1.5.5.7.1.31 is present");
    assert.equal(ext.critical, true);
    const inner = der.readDer(ext.value);
    assert.equal(inner.raw.length, ext.value.length, "extnValue is exactly one DER value");
    assert.equal(inner.tagByte, 0x04, "Authorization ::= OCTET STRING");
    assert.equal(inner.content.length, 32);
    assert.deepEqual(inner.content, createHash("sha256").update(KEY_AUTH).digest());
    const now = Date.now();
    assert.ok(new Date(x.validFrom).getTime() < now && now < new Date(x.validTo).getTime());
  });

  test("an IP address is an iPAddress subjectAltName (RFC 8738 6), asked for by its reverse-DNS name", () => {
    const v4 = new X509Certificate(challengeCertificate({ type: "ip", value: "10.1.2.3" }, KEY_AUTH, key));
    assert.equal(v4.subjectAltName, "IP Address:10.1.2.3");
    assert.equal(sniName({ type: "ip", value: "10.1.2.3" }), "3.2.1.10.in-addr.arpa");
    assert.equal(
      sniName({ type: "ip", value: "2001:db8::567:89ab" }),
      "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
    assert.equal(sniName({ type: "dns", value: "A.Example" }), "a.example");
  });
});

/** Runs `openssl s_client` (asynchronously: the listener is in this process) and returns its output. */
function sClient(port: number, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      "openssl",
      ["s_client", "-connect", `127.0.0.1:${port}`, ...args],
      { timeout: 10_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }),
    );
    child.stdin?.end();
  });
}

/** A port free on 127.0.0.1 a moment ago. */
async function freeLocalPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

function pemOf(out: string): string | undefined {
  return /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
}

describe("the tls-alpn-01 listener", () => {
  const solver = new TlsAlpnSolver({ port: 0, address: "127.0.0.1", logger: silentLogger });
  const ctx: ChallengeContext = {
    identifier: { type: "dns", value: "a.example" },
    token: "t",
    keyAuthorization: KEY_AUTH,
  };
  let port = 0;
  before(async () => {
    await solver.listen();
    port = solver.port();
    await solver.present(ctx);
  });
  after(() => solver.close());

  test("openssl s_client -alpn acme-tls/1 -servername NAME gets the certificate; openssl x509 shows the critical extension", async () => {
    const r = await sClient(port, ["-alpn", "acme-tls/1", "-servername", "a.example"]);
    assert.match(r.out, /ALPN protocol: acme-tls\/1/);
    const pem = pemOf(r.out);
    assert.ok(pem, r.out);
    const text = await new Promise<string>((resolve, reject) => {
      const c = execFile("openssl", ["x509", "-noout", "-text", "-certopt", "ext_dump"], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      );
      c.stdin?.end(pem);
    });
    assert.match(text, /DNS:a\.example\n/);
    // OpenSSL prints the extension it does not know by OID, marked critical, with a hex dump of
    // extnValue: 04 20 (OCTET STRING, 32 bytes) and the digest.
    const [, dump = ""] =
      /1\.3\.6\.1\.5\.5\.7\.1\.31: critical\n((?:\s+[0-9a-f]{4} - .*\n)+)/.exec(text) ?? [];
    const hex = [...dump.matchAll(/ - ((?:[0-9a-f]{2}[ -]+)+)/g)]
      .map((m) => m[1]?.replace(/[ -]/g, ""))
      .join("");
    assert.equal(hex, `0420${createHash("sha256").update(KEY_AUTH).digest("hex")}`, text);
  });

  test("an unknown SNI, no SNI, and another ALPN are refused in the handshake", async () => {
    for (const args of [
      ["-alpn", "acme-tls/1", "-servername", "b.example"],
      ["-alpn", "acme-tls/1", "-noservername"],
      ["-alpn", "h2,http/1.1", "-servername", "a.example"],
    ]) {
      const r = await sClient(port, args);
      assert.equal(pemOf(r.out), undefined, `${args.join(" ")} got a certificate:\n${r.out}`);
      assert.match(r.out, /alert|unexpected eof|handshake failure/i, args.join(" "));
    }
  });

  test("a client without ALPN is disconnected right after the handshake", async () => {
    const seen = await new Promise<string[]>((resolve) => {
      const events: string[] = [];
      const s = connect({ port, host: "127.0.0.1", servername: "a.example", rejectUnauthorized: false });
      s.on("secureConnect", () => events.push("handshake"));
      s.on("error", () => events.push("error"));
      s.on("close", () => resolve([...events, "closed"]));
      setTimeout(() => {
        resolve([...events, "still open"]);
        s.destroy();
      }, 2000).unref();
      s.resume();
    });
    assert.deepEqual(
      seen.filter((e) => e !== "error"),
      ["handshake", "closed"],
    );
  });

  test("after cleanup the name is refused", async () => {
    await solver.cleanup(ctx);
    const r = await sClient(port, ["-alpn", "acme-tls/1", "-servername", "a.example"]);
    assert.equal(pemOf(r.out), undefined);
    await solver.present(ctx);
  });

  test("a wildcard is refused", async () => {
    await assert.rejects(solver.present({ ...ctx, wildcard: true }), WileError);
  });
});

describe("one listener per port in a process (wile cron renews certificates at once)", () => {
  test("two solvers on one port share it: each serves its names; the port is freed when the last closes", async () => {
    const port = await freeLocalPort();
    const one = new TlsAlpnSolver({ port, address: "127.0.0.1", logger: silentLogger });
    const two = new TlsAlpnSolver({ port, address: "127.0.0.1", logger: silentLogger });
    await Promise.all([one.listen(), two.listen()]);
    const a: ChallengeContext = {
      identifier: { type: "dns", value: "a.example" },
      token: "t",
      keyAuthorization: KEY_AUTH,
    };
    const b: ChallengeContext = {
      identifier: { type: "dns", value: "b.example" },
      token: "u",
      keyAuthorization: KEY_AUTH,
    };
    await one.present(a);
    await two.present(b);
    const served = async (name: string) =>
      pemOf((await sClient(port, ["-alpn", "acme-tls/1", "-servername", name])).out) !== undefined;
    assert.deepEqual([await served("a.example"), await served("b.example")], [true, true]);
    await one.close();
    assert.deepEqual([await served("a.example"), await served("b.example")], [false, true]);
    await two.close();
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once("error", reject);
      again.listen(port, "127.0.0.1", resolve);
    });
    again.close();
  });
});

describe("the tls-alpn-01 preflight", () => {
  function recorder() {
    const warnings: string[] = [];
    return { warnings, info() {}, debug() {}, warn: (m: string) => warnings.push(m) };
  }
  const ctx: ChallengeContext = {
    identifier: { type: "dns", value: "a.example" },
    token: "t",
    keyAuthorization: KEY_AUTH,
  };

  /** A TLS server on 127.0.0.1 with its own certificate, answering the given ALPN protocols. */
  async function otherServer(alpn: string[]): Promise<{ port: number; close: () => void }> {
    const k = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const cert = toPem("CERTIFICATE", challengeCertificate({ type: "dns", value: "site.example" }, "x", k));
    const server = createTlsServer(
      { key: k.export({ type: "pkcs8", format: "pem" }), cert, ALPNProtocols: alpn },
      (s) => s.end(),
    );
    server.on("tlsClientError", () => {});
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { port: (server.address() as { port: number }).port, close: () => server.close() };
  }

  async function solverWith(resolvePort: number) {
    const logger = recorder();
    const solver = new TlsAlpnSolver({
      port: 0,
      address: "127.0.0.1",
      logger,
      preflight: {
        resolve: [{ host: "a.example", port: resolvePort, address: "127.0.0.1" }],
        timeoutMs: 3000,
      },
    });
    await solver.listen();
    await solver.present(ctx);
    return { solver, logger };
  }

  test("wile's own listener reached: passes quietly", async () => {
    const port = await freeLocalPort();
    const logger = recorder();
    const solver = new TlsAlpnSolver({
      port,
      address: "127.0.0.1",
      logger,
      preflight: { resolve: [{ host: "a.example", port, address: "127.0.0.1" }] },
    });
    await solver.listen();
    await solver.present(ctx);
    await solver.preflight(ctx);
    assert.deepEqual(logger.warnings, []);
    await solver.close();
  });

  test("another certificate on acme-tls/1, or a server refusing acme-tls/1: a WileError naming where", async () => {
    for (const alpn of [["acme-tls/1"], ["http/1.1"]]) {
      const other = await otherServer(alpn);
      const { solver } = await solverWith(other.port);
      await assert.rejects(solver.preflight(ctx), (e: unknown) => {
        assert.ok(e instanceof WileError);
        assert.match(
          e.message,
          new RegExp(`Preflight for a\\.example failed: 127\\.0\\.0\\.1:${other.port} `),
        );
        assert.match(
          e.message,
          alpn[0] === "acme-tls/1"
            ? /another certificate \(subject wile tls-alpn-01 challenge, DNS:site\.example\)/
            : /refuses ALPN acme-tls\/1/,
        );
        assert.match(e.hint ?? "", /--no-preflight/);
        return true;
      });
      await solver.close();
      other.close();
    }
  });

  test("nothing answers: a warning, and the CA is asked anyway", async () => {
    const { solver, logger } = await solverWith(await freeLocalPort());
    await solver.preflight(ctx);
    assert.equal(logger.warnings.length, 1);
    assert.match(
      logger.warnings[0] ?? "",
      /could not complete a TLS handshake with 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );
    await solver.close();
  });
});

describe("listen errors", () => {
  test("a port in use is a UsageError naming the port", async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    const port = (holder.address() as { port: number }).port;
    const solver = new TlsAlpnSolver({ port, address: "127.0.0.1", logger: silentLogger });
    const err = await solver.listen().then(
      () => undefined,
      (e: unknown) => e,
    );
    holder.close();
    assert.ok(err instanceof UsageError, String(err));
    assert.match(
      err.message,
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port} for tls-alpn-01 \\(--alpn\\): it is in use`),
    );
    assert.match(err.hint ?? "", /--tls-port/);
  });

  test("EACCES names the three ways for an unprivileged user", async () => {
    const e = Object.assign(new Error("listen EACCES"), { code: "EACCES" });
    const err = await listenError(e, 443, undefined, {
      what: "tls-alpn-01 (--alpn)",
      portOption: "--tls-port",
      caPort: 443,
      addressOption: "--tls-address",
      instead: "or route acme-tls/1 to wile",
    });
    assert.ok(err instanceof UsageError);
    assert.match(err.message, /Cannot listen on port 443 for tls-alpn-01 \(--alpn\): permission denied/);
    for (const way of [
      "setcap cap_net_bind_service",
      "authbind",
      "net.ipv4.ip_unprivileged_port_start=443",
      "--tls-port",
    ]) {
      assert.ok(err.hint?.includes(way), way);
    }
  });
});
