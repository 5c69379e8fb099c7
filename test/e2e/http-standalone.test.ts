/**
 * End to end: http-01 answered by wile's own listener (--standalone). Pebble's VA is pointed at
 * wile's port (its config's httpPort), so the CA validates against the listener itself; a second
 * environment has nginx in front, forwarding /.well-known/acme-challenge/ of one name to wile, for
 * a certificate that mixes --standalone and -w. A port that is taken or not permitted stops the run
 * before the CA is contacted; after SIGTERM or SIGINT the port is free at once.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { forgetAuthorizations } from "../helpers/authz";
import { keyMatchesCert, keyTypeOf, sanNames, serialHex } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { accessLog, certFiles, hasStackTrace, PEBBLE_VA_UA } from "../helpers/e2e";
import { giveToNobody, isRoot, otherUserBin } from "../helpers/other-user";
import { freePort, startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let proxied: TestEnv;
/** Pebble's VA fetches http-01 here: wile listens on it. */
let vaPort: number;
/** wile's port behind nginx in the second environment. */
let behindPort: number;

before(async () => {
  [vaPort, behindPort] = [await freePort(), await freePort()];
  [env, proxied] = await Promise.all([
    startTestEnv({ vaHttpPort: vaPort, env: { PEBBLE_AUTHZREUSE: "0" } }),
    startTestEnv({ nginxExtra: true }),
  ]);
  // nginx on port 80 (so to speak) passes mix-a.example's challenges to wile, as docs/http-01.md says.
  writeFileSync(
    proxied.nginxExtraConf,
    `server { listen 127.0.0.1:${proxied.httpPort}; server_name mix-a.example; root ${proxied.webroot};\n` +
      `  location /.well-known/acme-challenge/ { proxy_pass http://127.0.0.1:${behindPort}; } }\n`,
  );
  await proxied.reloadNginx();
});

after(async () => {
  await Promise.all([env?.stop(), proxied?.stop()]);
});

function standaloneArgs(e: TestEnv, names: string[], port: number, extra: string[] = []): string[] {
  const args = ["issue"];
  for (const n of names) args.push("-d", n);
  args.push(
    "--standalone",
    "--http-port",
    String(port),
    "--server",
    e.directoryUrl,
    "--ca-bundle",
    e.caBundle,
  );
  for (const n of names) args.push("--resolve", `${n}:${port}:127.0.0.1`);
  return [...args, ...extra];
}

/** The port can be bound again, on every address (IPv4 and IPv6): nothing holds it. */
function bindable(port: number): Promise<true | string> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", (e) => resolve(e.message));
    s.listen(port, () => s.close(() => resolve(true)));
  });
}

/** `ss -Hltn 'sport = :PORT'`: the listeners on the port ("" when none). */
function listenersOn(port: number): string {
  return execFileSync("ss", ["-Hltn", "sport", "=", `:${port}`], { encoding: "utf8" }).trim();
}

const pebbleLogSize = () => readFileSync(env.pebbleLog, "utf8").length;

// First, alone with the CA: these two must leave Pebble's log as it was.
describe("http-01 --standalone: an unusable port stops the run before the CA", { concurrency: true }, () => {
  it("a port another program holds: exit 2 naming the port and the program, no order", async () => {
    const port = await freePort();
    const holder = await holdPort(port);
    try {
      const logBefore = pebbleLogSize();
      const home = join(tempDir("wile-e2e-sa-"), "wile");
      const r = await runWile(standaloneArgs(env, ["taken.example"], port), { home });
      assert.equal(r.code, 2, dump(r));
      assert.match(r.stderr, new RegExp(`port ${port} .*in use: node \\(pid ${holder.pid}\\) holds it`));
      assert.match(r.stderr, /-w DIR/);
      assert.match(r.stderr, /--http-port PORT and forward port 80/);
      assert.ok(!hasStackTrace(r.stderr), r.stderr);
      assert.equal(pebbleLogSize(), logBefore, "Pebble was not contacted (no account, no new-order)");
    } finally {
      await stop(holder);
    }
  });

  it("a privileged port as a user that may not bind it: exit 2 with the ways to allow it, no order", async (t) => {
    const floor = Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8"));
    const port = 1023;
    const why =
      floor <= port
        ? `net.ipv4.ip_unprivileged_port_start is ${floor} here: every user may bind port ${port}, so no EACCES can be provoked`
        : !isRoot && process.getuid?.() === undefined && "no user ids on this system";
    // Reported as skipped (never as passed) where it cannot run; under CI=true it fails instead.
    const skipped = skipUnlessAvailable(why);
    if (skipped) return t.skip(skipped);
    const dir = tempDir("wile-e2e-sa-nobody-");
    const home = join(dir, "wile");
    giveToNobody(dir);
    const logBefore = pebbleLogSize();
    const r = await runWile(standaloneArgs(env, ["low.example"], port), { home, bin: otherUserBin() ?? "" });
    assert.equal(r.code, 2, dump(r));
    assert.match(r.stderr, new RegExp(`Cannot listen on port ${port} .*permission denied`));
    assert.match(r.stderr, /setcap cap_net_bind_service=\+ep \//);
    assert.match(r.stderr, new RegExp(`authbind.*/etc/authbind/byport/${port}`));
    assert.match(r.stderr, new RegExp(`sysctl net.ipv4.ip_unprivileged_port_start=${port}`));
    assert.match(r.stderr, /--http-port 8080/);
    assert.match(
      r.stderr,
      new RegExp(`iptables -t nat -A PREROUTING -p tcp --dport ${port} -j REDIRECT --to-ports 8080`),
    );
    assert.match(r.stderr, /nft add rule ip nat prerouting/);
    assert.equal(pebbleLogSize(), logBefore, "Pebble was not contacted");
  });
});

describe("http-01 --standalone", { concurrency: true }, () => {
  it("issues with RSA and EC keys (an IP address too) on the port the CA validates, and renew --force replays it", async () => {
    const home = join(tempDir("wile-e2e-sa-"), "wile");
    const rsa = await runWile(standaloneArgs(env, ["sa-rsa.example"], vaPort, ["--key-type", "rsa-2048"]), {
      home,
    });
    assert.equal(rsa.code, 0, dump(rsa));
    assert.match(rsa.stderr, new RegExp(`Listening on \\[::\\]:${vaPort} for http-01`));
    const r1 = certFiles(home, "sa-rsa.example");
    assert.deepEqual(sanNames(r1.cert), ["sa-rsa.example"]);
    assert.match(keyTypeOf(r1.privkey), /RSA/i);
    assert.ok(keyMatchesCert(r1.privkey, r1.cert).match);
    assert.equal(await bindable(vaPort), true, "the port is free after the run");

    const ec = await runWile(standaloneArgs(env, ["sa-ec.example", "127.0.0.1"], vaPort), { home });
    assert.equal(ec.code, 0, dump(ec));
    const e1 = certFiles(home, "sa-ec.example");
    assert.deepEqual(sanNames(e1.cert).sort(), ["IP:127.0.0.1", "sa-ec.example"]);
    assert.match(keyTypeOf(e1.privkey), /EC|prime256v1/i);
    const saved = JSON.parse(readFileSync(e1.renewal, "utf8")).challenge;
    assert.deepEqual(saved, {
      type: "http-01",
      webroots: {},
      standalone: { names: ["sa-ec.example", "127.0.0.1"], port: vaPort },
    });

    // Both certificates at once (--parallel 4 by default): they share one listener on the port.
    const before = [serialHex(r1.cert), serialHex(e1.cert)];
    // The renewals must prove control again: no authorization reuse (test/helpers/authz.ts).
    await forgetAuthorizations(env, home, ["sa-rsa.example", "sa-ec.example", "127.0.0.1"]);
    const renewed = await runWile(["renew", "--all", "--force"], { home });
    assert.equal(renewed.code, 0, dump(renewed));
    assert.match(renewed.stderr, new RegExp(`Listening on \\[::\\]:${vaPort}`));
    assert.notEqual(serialHex(r1.cert), before[0], "a new RSA certificate");
    assert.notEqual(serialHex(e1.cert), before[1], "a new EC certificate");
    assert.equal(await bindable(vaPort), true, "the port is free after the renewal");

    // A renewal finds the port taken: the same message, a failed renewal (renew's exit 1), and
    // the certificate stays.
    const current = serialHex(e1.cert);
    const holder = await holdPort(vaPort);
    try {
      const taken = await runWile(["renew", "sa-ec.example", "--force"], { home });
      assert.equal(taken.code, 1, dump(taken));
      assert.equal(serialHex(e1.cert), current);
      assert.match(
        taken.stderr,
        new RegExp(`port ${vaPort} .*in use: node \\(pid ${holder.pid}\\) holds it`),
      );
    } finally {
      await stop(holder);
    }
  });

  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130],
  ] as const) {
    it(`${signal} while waiting for the CA: the port is free at once, nothing left listening`, async () => {
      const ca = await silentCa();
      const port = await freePort();
      try {
        const home = join(tempDir("wile-e2e-sa-sig-"), "wile");
        const args = standaloneArgs(env, ["sig.example"], port);
        args[args.indexOf(env.directoryUrl)] = ca.url;
        // A client in the middle of a request to wile's listener when the signal comes: the
        // listener must drop it rather than wait (the interrupt handler would wait 5 s).
        let stuck: Socket | undefined;
        let signalledAt = 0;
        const run = runWile(args, {
          home,
          timeoutMs: 20_000,
          // Listening, and stuck on the CA's directory (which never answers).
          interrupt: {
            when: /Listening on /,
            signal,
            afterMs: 500,
            before: () => {
              assert.match(listenersOn(port), new RegExp(`:${port}\\b`), "wile listens");
              assert.ok(stuck?.readyState === "open", "a client is in the middle of a request");
              signalledAt = Date.now();
            },
          },
        });
        stuck = await connectWhenListening(port);
        stuck.write(`GET /.well-known/acme-challenge/x HTTP/1.1\r\nHost: sig.example\r\n`);
        const r = await run.finally(() => stuck?.destroy());
        assert.ok(r.interrupted, dump(r));
        assert.equal(r.code, code, dump(r));
        assert.ok(Date.now() - signalledAt < 3000, `wile took ${Date.now() - signalledAt} ms to stop`);
        assert.ok(ca.connections() > 0, "wile was waiting for the CA");
        assert.equal(await bindable(port), true, "the port is free at once");
        assert.equal(listenersOn(port), "", "nothing listens on the port");
      } finally {
        await ca.close();
      }
    });
  }

  it("-d a --standalone -d b -w DIR mixes the methods, with nginx forwarding a's challenges to wile", async () => {
    const home = join(tempDir("wile-e2e-sa-mix-"), "wile");
    const names = ["mix-a.example", "mix-b.example"];
    const r = await runWile(
      [
        "issue",
        "-d",
        "mix-a.example",
        "--standalone",
        "-d",
        "mix-b.example",
        "-w",
        proxied.webroot,
        "--http-port",
        String(behindPort),
        "--http-address",
        "127.0.0.1",
        "--server",
        proxied.directoryUrl,
        "--ca-bundle",
        proxied.caBundle,
        ...names.flatMap((n) => ["--resolve", proxied.resolveArg(n)]),
      ],
      { home },
    );
    assert.equal(r.code, 0, dump(r));
    assert.match(r.stderr, new RegExp(`Listening on 127\\.0\\.0\\.1:${behindPort}`));
    const f = certFiles(home, "mix-a.example");
    assert.deepEqual(sanNames(f.cert).sort(), names);
    assert.deepEqual(JSON.parse(readFileSync(f.renewal, "utf8")).challenge, {
      type: "http-01",
      webroots: { "mix-b.example": proxied.webroot },
      standalone: { names: ["mix-a.example"], port: behindPort, address: "127.0.0.1" },
    });
    // The CA's fetch for a went through nginx to wile; b's came from the webroot.
    const va = (host: string) => accessLog(proxied, host).filter((l) => PEBBLE_VA_UA.test(l.ua));
    assert.ok(
      va("mix-a.example").some((l) => l.status === 200),
      JSON.stringify(accessLog(proxied, "mix-a.example")),
    );
    assert.ok(va("mix-b.example").some((l) => l.status === 200));
    assert.equal(await bindable(behindPort), true);
  });

  it("the name reaches another server, not wile: the preflight says the forward is missing (exit 1)", async () => {
    const home = join(tempDir("wile-e2e-sa-pre-"), "wile");
    const port = await freePort();
    const args = standaloneArgs(env, ["noforward.example"], port);
    // The name leads to nginx, which knows nothing of wile's listener.
    args[args.indexOf(`noforward.example:${port}:127.0.0.1`)] = env.resolveArg("noforward.example");
    const r = await runWile(args, { home });
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /answered HTTP 404 .*but not from wile's listener/);
    assert.match(r.stderr, new RegExp(`forward from port 80 to ${port} is missing`));
    assert.equal(await bindable(port), true);
  });
});

/** A connection to 127.0.0.1:port as soon as something listens there (within 10 s). */
async function connectWhenListening(port: number): Promise<Socket> {
  for (let i = 0; i < 500; i++) {
    const sock = await new Promise<Socket | undefined>((resolve) => {
      const s = connect(port, "127.0.0.1", () => resolve(s));
      s.once("error", () => resolve(undefined));
    });
    if (sock) {
      sock.on("error", () => {});
      return sock;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listened on port ${port} within 10 s`);
}

/** A TLS port that accepts connections and never answers: a CA that keeps wile waiting. */
async function silentCa(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const held: Socket[] = [];
  const server: Server = createServer((sock) => held.push(sock));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}/dir`,
    connections: () => held.length,
    close: () =>
      new Promise<void>((r) => {
        for (const s of held) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Another program (node) listening on `port` on every address. */
async function holdPort(port: number): Promise<ChildProcess> {
  const holder = spawn(process.execPath, [
    "-e",
    `require("net").createServer().listen(${port}, () => console.log("up"))`,
  ]);
  await new Promise((r) => holder.stdout?.once("data", r));
  return holder;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((r) => {
    child.once("exit", r);
    child.kill("SIGTERM");
  });
}
