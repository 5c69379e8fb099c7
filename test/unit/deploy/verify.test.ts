import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  TLSSocket,
} from "node:tls";
import { DeployError } from "../../../src/deploy/target";
import {
  describeEndpoint,
  type Endpoint,
  fetchServedCertificate,
  formatEndpoint,
  parseEndpoint,
  VerifyConnectionError,
  verifyServed,
} from "../../../src/deploy/verify";
import { UsageError } from "../../../src/util/errors";
import type { Logger } from "../../../src/util/log";
import { serialHex } from "../../helpers/certs";

interface Pair {
  key: string;
  cert: string;
  der: Buffer;
  serial: string;
  expires: string;
}

let tmp = "";
let oldPair: Pair;
let newPair: Pair;
const servers: Server[] = [];

/** A self-signed certificate for mail.example.test; `serial` as openssl's -set_serial takes it. */
function makePair(name: string, days: number, serial?: string): Pair {
  const key = join(tmp, `${name}.key`);
  const cert = join(tmp, `${name}.pem`);
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
      String(days),
      "-subj",
      `/CN=${name}`,
      "-addext",
      "subjectAltName=DNS:mail.example.test",
      "-keyout",
      key,
      "-out",
      cert,
      ...(serial === undefined ? [] : ["-set_serial", serial]),
    ],
    { stdio: "ignore" },
  );
  const pem = readFileSync(cert, "utf8");
  const x = new X509Certificate(pem);
  return {
    key: readFileSync(key, "utf8"),
    cert: pem,
    der: x.raw,
    serial: serialHex(cert),
    expires: new Date(x.validTo).toISOString().slice(0, 10),
  };
}

function listen(server: Server): Promise<number> {
  servers.push(server);
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  const port = await new Promise<number>((resolve) =>
    s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)),
  );
  await new Promise((r) => s.close(r));
  return port;
}

/** A TLS server; `sni` collects the names clients sent. */
async function tlsServer(pair: Pair) {
  const sni: string[] = [];
  let context = createSecureContext({ key: pair.key, cert: pair.cert });
  const server = createTlsServer({
    key: pair.key,
    cert: pair.cert,
    SNICallback: (name, cb) => {
      sni.push(name);
      cb(null, context);
    },
  });
  server.on("secureConnection", (s) => {
    s.on("error", () => {});
    s.end();
  });
  server.on("connection", (s) => s.on("error", () => {}));
  server.on("tlsClientError", () => {});
  const port = await listen(server);
  const switchTo = (p: Pair) => {
    context = createSecureContext({ key: p.key, cert: p.cert });
    server.setSecureContext({ key: p.key, cert: p.cert });
  };
  return { server, port, sni, switchTo };
}

type Dialog = "smtp" | "imap" | "pop3";

/**
 * A plain-text server that speaks just enough of `dialog` to reach STARTTLS, then upgrades the same
 * socket with a server-side TLSSocket. `lines` records what the client sent.
 */
async function starttlsServer(dialog: Dialog, pair: Pair, greeting?: string) {
  const lines: string[] = [];
  const sni: string[] = [];
  const context: SecureContext = createSecureContext({ key: pair.key, cert: pair.cert });
  const server = createNetServer((socket: Socket) => {
    socket.on("error", () => {});
    const first = {
      smtp: "220 test ESMTP\r\n",
      imap: "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
      pop3: "+OK ready\r\n",
    };
    socket.write(greeting ?? first[dialog]);
    let buf = "";
    const onData = (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        lines.push(line);
        const upgrade = (reply: string) => {
          socket.off("data", onData);
          socket.write(reply, () => {
            const secure = new TLSSocket(socket, {
              isServer: true,
              secureContext: context,
              SNICallback: (name, cb) => {
                sni.push(name);
                cb(null, context);
              },
            });
            secure.on("secure", () => secure.end());
            secure.on("error", () => {});
          });
        };
        if (dialog === "smtp" && /^EHLO /i.test(line)) {
          socket.write("250-test.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n");
        } else if (dialog === "smtp" && line === "STARTTLS") {
          return upgrade("220 2.0.0 Ready to start TLS\r\n");
        } else if (dialog === "imap" && line === "a1 STARTTLS") {
          socket.write("* NOTE untagged line first\r\n");
          return upgrade("a1 OK Begin TLS negotiation now\r\n");
        } else if (dialog === "pop3" && line === "STLS") {
          return upgrade("+OK Begin TLS\r\n");
        } else {
          socket.write(dialog === "imap" ? `${line.split(" ")[0]} BAD\r\n` : "-ERR what\r\n");
        }
      }
    };
    socket.on("data", onData);
  });
  const port = await listen(server);
  return { server, port, lines, sni };
}

function recorder(): Logger & { infos: string[] } {
  const infos: string[] = [];
  return { infos, info: (m) => infos.push(m), warn: () => {}, debug: () => {} };
}

const ep = (port: number, protocol: Endpoint["protocol"] = "tls"): Endpoint => ({
  host: "127.0.0.1",
  port,
  protocol,
});

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wile-verify-"));
  oldPair = makePair("old", 2);
  newPair = makePair("new", 90);
});

after(() => {
  for (const s of servers) s.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe("parseEndpoint", () => {
  const d = { port: 993, protocol: "tls" as const };
  test("host alone takes the defaults", () => {
    assert.deepEqual(parseEndpoint("mail.example.com", d), {
      host: "mail.example.com",
      port: 993,
      protocol: "tls",
    });
  });
  test("host:port and host:port:proto", () => {
    assert.deepEqual(parseEndpoint("127.0.0.1:8443", d), { host: "127.0.0.1", port: 8443, protocol: "tls" });
    assert.deepEqual(parseEndpoint("mx.example:2525:SMTP", d), {
      host: "mx.example",
      port: 2525,
      protocol: "smtp",
    });
  });
  test("a well-known STARTTLS port without protocol picks it", () => {
    assert.equal(parseEndpoint("h:587", d).protocol, "smtp");
    assert.equal(parseEndpoint("h:25", d).protocol, "smtp");
    assert.equal(parseEndpoint("h:143", d).protocol, "imap");
    assert.equal(parseEndpoint("h:110", d).protocol, "pop3");
    assert.equal(parseEndpoint("h:465", { port: 25, protocol: "smtp" }).protocol, "tls");
    assert.equal(parseEndpoint("h:143:tls", d).protocol, "tls");
  });
  test("IPv6 in brackets, and bare", () => {
    assert.deepEqual(parseEndpoint("[::1]:995", d), { host: "::1", port: 995, protocol: "tls" });
    assert.deepEqual(parseEndpoint("[2001:db8::1]", d), { host: "2001:db8::1", port: 993, protocol: "tls" });
    assert.deepEqual(parseEndpoint("[::1]:143:imap", d), { host: "::1", port: 143, protocol: "imap" });
    assert.deepEqual(parseEndpoint("::1", d), { host: "::1", port: 993, protocol: "tls" });
  });
  test("bad input is a UsageError with an example", () => {
    for (const bad of [
      "",
      "h:0",
      "h:70000",
      "h:x",
      "h:25:ftp",
      "[::1",
      "[nope]:1",
      "a:b:c:d",
      "-h",
      "h h:1",
      "[::1]x",
    ]) {
      assert.throws(
        () => parseEndpoint(bad, d),
        (e: unknown) =>
          e instanceof UsageError && /invalid endpoint/.test(e.message) && /\[::1\]:993/.test(e.hint ?? ""),
        bad,
      );
    }
  });
  test("describe and format round-trip", () => {
    const e = parseEndpoint("[::1]:587", d);
    assert.equal(describeEndpoint(e), "[::1]:587");
    assert.equal(formatEndpoint(e), "[::1]:587:smtp");
    assert.deepEqual(parseEndpoint(formatEndpoint(e), { port: 1, protocol: "tls" }), e);
  });
});

describe("fetchServedCertificate", () => {
  test("TLS: the leaf DER, with SNI for a name and none for an IP", async () => {
    const { port, sni } = await tlsServer(newPair);
    const der = await fetchServedCertificate(ep(port), "mail.example.test");
    assert.ok(der.equals(newPair.der));
    await new Promise((r) => setTimeout(r, 100));
    await fetchServedCertificate(ep(port), "127.0.0.1");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(sni, ["mail.example.test"], "SNI for the name, none for the IP");
  });

  for (const dialog of ["smtp", "imap", "pop3"] as const) {
    test(`STARTTLS over ${dialog}`, async () => {
      const s = await starttlsServer(dialog, newPair);
      const der = await fetchServedCertificate(ep(s.port, dialog), "mail.example.test");
      assert.ok(der.equals(newPair.der));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(s.sni, ["mail.example.test"]);
      const expected = { smtp: ["EHLO wile.invalid", "STARTTLS"], imap: ["a1 STARTTLS"], pop3: ["STLS"] }[
        dialog
      ];
      assert.deepEqual(s.lines, expected);
    });
  }

  test("SMTP without STARTTLS in EHLO fails clearly", async () => {
    const server = createNetServer((socket) => {
      socket.on("error", () => {});
      socket.write("220 hi\r\n");
      socket.once("data", () => socket.write("250-x\r\n250 SIZE 10\r\n"));
    });
    const port = await listen(server);
    await assert.rejects(fetchServedCertificate(ep(port, "smtp"), "x"), /does not offer STARTTLS/);
  });

  test("a silent server times out, naming the stage", async () => {
    const server = createNetServer((socket) => socket.on("error", () => {}));
    const port = await listen(server);
    await assert.rejects(
      fetchServedCertificate(ep(port, "smtp"), "x", 300),
      (e: unknown) =>
        e instanceof VerifyConnectionError &&
        e.message === "timed out after 0.3 s while waiting for the SMTP greeting",
    );
  });

  test("reads before STARTTLS are capped at 64 KiB", async () => {
    const server = createNetServer((socket) => {
      socket.on("error", () => {});
      const line = `220-${"x".repeat(1000)}\r\n`;
      const pump = () => {
        while (socket.writable && socket.write(line)) {}
        if (socket.writable) socket.once("drain", pump);
      };
      pump();
    });
    const port = await listen(server);
    await assert.rejects(fetchServedCertificate(ep(port, "smtp"), "x"), /more than 65536 bytes/);
  });
});

describe("verifyServed", () => {
  test("match: logs success", async () => {
    const { port } = await tlsServer(newPair);
    const log = recorder();
    await verifyServed({
      service: "nginx",
      endpoint: ep(port),
      serverName: "mail.example.test",
      expectedDer: newPair.der,
      expectedSerialHex: newPair.serial,
      logger: log,
    });
    assert.deepEqual(log.infos, [
      `nginx on 127.0.0.1:${port} serves the new certificate (serial ${newPair.serial})`,
    ]);
  });

  test("mismatch after retrying: the served serial, expiry and the hint", async () => {
    const { port } = await tlsServer(oldPair);
    const start = Date.now();
    await assert.rejects(
      verifyServed({
        service: "dovecot",
        endpoint: ep(port),
        serverName: "mail.example.test",
        expectedDer: newPair.der,
        expectedSerialHex: newPair.serial,
        retryForMs: 600,
        hint: "does ssl_cert point at /etc/dovecot/private/x.pem?",
        logger: recorder(),
      }),
      (e: unknown) =>
        e instanceof DeployError &&
        e.message ===
          `dovecot on 127.0.0.1:${port} still serves serial ${oldPair.serial} (expires ${oldPair.expires}) after reload; does ssl_cert point at /etc/dovecot/private/x.pem?`,
    );
    assert.ok(Date.now() - start >= 500, "retried before failing");
  });

  test("the served serial is spelled as openssl prints it (a leading 0 nibble, a top bit set, zero)", async () => {
    for (const serial of ["0x0A1B2C", "0x87654321", "0x00"]) {
      const served = makePair(`served-${serial}`, 2, serial);
      const { port } = await tlsServer(served);
      await assert.rejects(
        verifyServed({
          service: "nginx",
          endpoint: ep(port),
          serverName: "mail.example.test",
          expectedDer: newPair.der,
          expectedSerialHex: newPair.serial,
          retryForMs: 0,
          logger: recorder(),
        }),
        (e: unknown) =>
          e instanceof DeployError &&
          e.message ===
            `nginx on 127.0.0.1:${port} still serves serial ${served.serial} (expires ${served.expires}) after reload`,
      );
    }
  });

  test("a server that switches to the new certificate during the retry window passes", async () => {
    const { port, switchTo } = await tlsServer(oldPair);
    const timer = setTimeout(() => switchTo(newPair), 300);
    const log = recorder();
    const start = Date.now();
    await verifyServed({
      service: "nginx",
      endpoint: ep(port),
      serverName: "mail.example.test",
      expectedDer: newPair.der,
      expectedSerialHex: newPair.serial,
      retryForMs: 5000,
      logger: log,
    });
    clearTimeout(timer);
    const took = Date.now() - start;
    assert.ok(took >= 300 && took < 2000, `took ${took} ms`);
    assert.equal(log.infos.length, 1);
  });

  test("STARTTLS smtp end to end", async () => {
    const s = await starttlsServer("smtp", newPair);
    await verifyServed({
      service: "postfix",
      endpoint: ep(s.port, "smtp"),
      serverName: "mail.example.test",
      expectedDer: newPair.der,
      expectedSerialHex: newPair.serial,
      logger: recorder(),
    });
  });

  test("a closed port gives the connection error", async () => {
    const port = await freePort();
    await assert.rejects(
      verifyServed({
        service: "dovecot",
        endpoint: ep(port),
        serverName: "x.example",
        expectedDer: newPair.der,
        expectedSerialHex: newPair.serial,
        retryForMs: 600,
        logger: recorder(),
      }),
      (e: unknown) =>
        e instanceof DeployError &&
        e.message.startsWith(`cannot check dovecot on 127.0.0.1:${port}: connection refused`),
    );
  });

  test("a garbage greeting fails at once and clearly", async () => {
    const s = await starttlsServer("imap", newPair, "HTTP/1.1 400 Bad Request\r\n\r\n");
    const start = Date.now();
    await assert.rejects(
      verifyServed({
        service: "dovecot",
        endpoint: ep(s.port, "imap"),
        serverName: "x.example",
        expectedDer: newPair.der,
        expectedSerialHex: newPair.serial,
        logger: recorder(),
      }),
      (e: unknown) =>
        e instanceof DeployError &&
        e.message ===
          `cannot check dovecot on 127.0.0.1:${s.port} (IMAP STARTTLS): unexpected IMAP greeting: "HTTP/1.1 400 Bad Request" (is this port really IMAP?)`,
    );
    assert.ok(Date.now() - start < 2000, "not retried");
  });
});

describe("verifySetting", () => {
  test('--no-KIND-verify (minimist\'s "false") and off/no/none turn the check off; else an endpoint', async () => {
    const { verifySetting } = await import("../../../src/deploy/verify");
    const setting = verifySetting({ help: "", defaults: { port: 993, protocol: "tls" } });
    for (const off of ["false", "no", "OFF", " none ", false]) assert.equal(setting.parse(off), false);
    assert.equal(setting.parse("127.0.0.1"), "127.0.0.1:993:tls");
    assert.equal(setting.parse("mail.example:143:imap"), "mail.example:143:imap");
  });
  test("anything else is refused with the reason", async () => {
    const { verifySetting } = await import("../../../src/deploy/verify");
    const setting = verifySetting({ help: "", defaults: { port: 993, protocol: "tls" } });
    assert.throws(
      () => setting.parse("127.0.0.1:99999"),
      /^Error: must be HOST\[:PORT\[:PROTOCOL\]\] \(invalid endpoint "127\.0\.0\.1:99999": port 99999 is not a number from 1 to 65535\)$/,
    );
    assert.throws(() => setting.parse(true), /^Error: must be HOST\[:PORT\[:PROTOCOL\]\] or false$/);
    assert.throws(() => setting.parse(443), /or false/);
  });
});
