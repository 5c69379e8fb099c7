/**
 * End to end: `--deploy haproxy` against a real HAProxy (2.6, Debian's) with its runtime API socket:
 * the certificate is hot-swapped with set/commit ssl cert, no restart, and the test checks what
 * HAProxy serves with openssl s_client on its own, besides wile's verify.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serialHex, servedSerial } from "../helpers/certs";
import { certFiles, issueArgs } from "../helpers/e2e";
import { type Haproxy, haproxyCommand, startHaproxy } from "../helpers/haproxy";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let haproxy: Haproxy;
let home: string;

before(async () => {
  haproxy = await startHaproxy();
  env = await startTestEnv();
  home = join(tempDir("wile-e2e-haproxy-"), "wile");
});

after(async () => {
  await haproxy?.stop();
  await env?.stop();
});

const wile = (args: string[]) => runWile(args, { home, timeoutMs: 90_000 });
// Serials are compared as openssl, HAProxy and wile print them, unchanged: one spelling.
const served = () => servedSerial(haproxy.port, "hap.example");
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("deploy to HAProxy over its runtime API", () => {
  const name = "hap.example";

  it("issue --deploy haproxy: HAProxy serves the new certificate without a restart", async () => {
    assert.equal(haproxy.placeholderSerial, "0A1B2C3D");
    assert.equal(served(), haproxy.placeholderSerial, "the placeholder at first");
    const first = await haproxyCommand(haproxy.socket, `show ssl cert ${haproxy.pemPath}`);
    assert.match(first, /^Serial: 0A1B2C3D\r?$/m, "HAProxy prints the leading 0 as openssl does");
    const r = await wile(
      issueArgs(
        env,
        [name],
        [
          "--deploy",
          "haproxy",
          "--haproxy-pem",
          haproxy.pemPath,
          "--haproxy-socket",
          haproxy.socket,
          "--haproxy-verify",
          `127.0.0.1:${haproxy.port}`,
        ],
      ),
    );
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, name);
    const serial = serialHex(f.cert);
    assert.equal(served(), serial, "openssl s_client sees the new serial");
    assert.ok(alive(haproxy.pid), "the same HAProxy process, never restarted");
    assert.ok(
      r.stderr.includes(`127.0.0.1:${haproxy.port} serves the new certificate (serial ${serial})\n`),
      `wile names the serial as openssl does (${serial}):\n${r.stderr}`,
    );
    // The PEM on disk: full chain then key, and it keeps the 0600 it had.
    const pem = readFileSync(haproxy.pemPath, "utf8");
    assert.equal(
      pem,
      `${readFileSync(f.fullchain, "utf8")}\n${readFileSync(f.privkey, "utf8")}`.replace(/\n+/g, "\n"),
    );
    assert.equal(statSync(haproxy.pemPath).mode & 0o777, 0o600);
    const renewal = JSON.parse(readFileSync(f.renewal, "utf8"));
    assert.deepEqual(renewal.deploy, [
      {
        kind: "haproxy",
        pem: haproxy.pemPath,
        socket: haproxy.socket,
        verify: `127.0.0.1:${haproxy.port}:tls`,
      },
    ]);
    // HAProxy itself says it holds the new certificate, and spells its serial as openssl does.
    const info = await haproxyCommand(haproxy.socket, `show ssl cert ${haproxy.pemPath}`);
    assert.match(info, new RegExp(`^Serial: ${serial}\\r?$`, "m"));
  });

  it("renew --force replays the deploy: a newer serial is served", async () => {
    const before = served();
    const r = await wile(["renew", name, "--force"]);
    assert.equal(r.code, 0, dump(r));
    const now = served();
    assert.notEqual(now, before);
    assert.equal(now, serialHex(certFiles(home, name).cert));
    assert.ok(alive(haproxy.pid));
  });

  it("wile deploy NAME runs it again", async () => {
    const r = await wile(["deploy", name]);
    assert.equal(r.code, 0, dump(r));
    assert.equal(served(), serialHex(certFiles(home, name).cert));
  });

  it("a wrong socket path: exit 1 with a clear message, the new certificate stays stored", async () => {
    const other = "hap-bad.example";
    const missing = join(haproxy.tmp, "no-such.sock");
    const r = await wile(
      issueArgs(
        env,
        [other],
        [
          "--deploy",
          "haproxy",
          "--haproxy-pem",
          haproxy.pemPath,
          "--haproxy-socket",
          missing,
          "--haproxy-verify",
          `127.0.0.1:${haproxy.port}`,
        ],
      ),
    );
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, new RegExp(`cannot reach the runtime API at ${missing}: there is no such socket`));
    assert.match(r.stderr, /stats socket/);
    assert.ok(serialHex(certFiles(home, other).cert), "the certificate is issued and stored");
    assert.equal(served(), serialHex(certFiles(home, name).cert), "HAProxy untouched");
  });

  it("a --haproxy-pem HAProxy did not load fails before any file is written", async () => {
    const wrong = join(haproxy.tmp, "other.pem");
    const r = await wile([
      "deploy",
      name,
      "--deploy",
      "haproxy",
      "--haproxy-pem",
      wrong,
      "--haproxy-socket",
      haproxy.socket,
    ]);
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /other\.pem is not a certificate HAProxy has loaded/);
    assert.throws(() => statSync(wrong), "nothing was written");
  });
});
