/**
 * End to end: dist/wile.cjs issues certificates from a real Pebble, proving http-01 through nginx.
 * One environment and one wile home for the whole file; tests run in order.
 */
import assert from "node:assert/strict";
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  filesUnder,
  keyMatchesCert,
  keyTypeOf,
  mode,
  octal,
  pemBlocks,
  sanNames,
  serialHex,
  verifyChain,
  walk,
} from "../helpers/certs";
import { certFiles, hasStackTrace, issueArgs, otherFetches, pebbleFetches, snapshot } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;
let root: string;

before(async () => {
  // Pebble reuses valid authorizations half of the time by default; here never, so that a --force
  // re-issue with a wrong webroot really meets a validation (authorization reuse: authz-reuse.test.ts).
  env = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "0" } });
  home = join(tempDir("wile-e2e-home-"), "wile");
  root = await env.pebbleRoot(0);
});

after(async () => {
  await env?.stop();
});

const wile = (args: string[], timeoutMs = 60_000, umask?: number) =>
  runWile(args, { home, timeoutMs, umask });

/** The checks every successful issuance must pass. */
function checkIssued(name: string, names: string[], keyType: string): void {
  const f = certFiles(home, name);
  for (const p of [f.privkey, f.cert, f.chain, f.fullchain, f.renewal]) {
    assert.ok(existsSync(p), `${p} should exist`);
  }
  assert.deepEqual(
    sanNames(f.cert),
    [...names].sort(),
    "SANs (openssl x509 -text) are exactly the requested names",
  );
  assert.equal(keyTypeOf(f.privkey), keyType, "certificate key type");
  const km = keyMatchesCert(f.privkey, f.cert);
  assert.ok(km.match, `privkey.pem and cert.pem hold different public keys:\n${km.fromKey}\n${km.fromCert}`);
  const verified = verifyChain(root, f.chain, f.cert, env.tmp);
  assert.match(verified, /: OK$/, "openssl verify with Pebble's root and chain.pem");
  const cert = readFileSync(f.cert, "utf8");
  const chain = readFileSync(f.chain, "utf8");
  const full = readFileSync(f.fullchain, "utf8");
  assert.equal(pemBlocks(cert).length, 1, "cert.pem holds exactly the leaf");
  assert.ok(pemBlocks(chain).length >= 1, "chain.pem holds the intermediate(s)");
  assert.deepEqual(pemBlocks(full), [...pemBlocks(cert), ...pemBlocks(chain)], "fullchain = cert + chain");
  assert.equal(mode(f.privkey), 0o600, `privkey.pem mode ${octal(mode(f.privkey))}`);
  JSON.parse(readFileSync(f.renewal, "utf8"));
  // Pebble really validated through nginx, and wile cleaned the webroot afterwards.
  for (const n of names) assert.ok(pebbleFetches(env, n).length > 0, `Pebble's VA fetched nothing for ${n}`);
  assert.deepEqual(filesUnder(join(env.webroot, ".well-known")), [], "challenge files left in the webroot");
}

describe("wile issue against Pebble (http-01 webroot)", () => {
  it("issues a certificate for a single name (EC P-256 by default) whose chain verifies", async () => {
    const r = await wile(issueArgs(env, ["single.example"], ["--email", "admin@single.example"]));
    assert.equal(r.code, 0, dump(r));
    checkIssued("single.example", ["single.example"], "ec-256");
    // The preflight fetched the token through nginx before the CA did.
    assert.ok(
      otherFetches(env, "single.example").length > 0,
      "wile's own preflight fetch is not in nginx's log",
    );
  });

  it("issues one certificate for several names with every name in subjectAltName", async () => {
    const names = ["multi.example", "www.multi.example", "api.multi.example"];
    const r = await wile(issueArgs(env, names));
    assert.equal(r.code, 0, dump(r));
    checkIssued("multi.example", names, "ec-256");
  });

  it("issues with --key-type rsa-2048", async () => {
    const r = await wile(issueArgs(env, ["rsa.example"], ["--key-type", "rsa-2048"]));
    assert.equal(r.code, 0, dump(r));
    checkIssued("rsa.example", ["rsa.example"], "rsa-2048");
  });

  it("issues with --key-type ec-384 (under umask 000)", async () => {
    const r = await wile(issueArgs(env, ["ec384.example"], ["--key-type", "ec-384"]), 60_000, 0o000);
    assert.equal(r.code, 0, dump(r));
    checkIssued("ec384.example", ["ec384.example"], "ec-384");
  });

  it("keeps private keys 0600 and directories 0700 under the home, whatever the umask", () => {
    const { dirs, keyFiles } = walk(home);
    assert.ok(keyFiles.length >= 2, `expected account and certificate keys, found ${keyFiles.join(", ")}`);
    for (const k of keyFiles) assert.equal(mode(k), 0o600, `${k} has mode ${octal(mode(k))}`);
    for (const d of dirs) assert.equal(mode(d), 0o700, `${d} has mode ${octal(mode(d))}`);
    const accounts = join(home, "accounts");
    const caDirs = readdirSync(accounts);
    const port = new URL(env.directoryUrl).port;
    assert.ok(caDirs.includes(`127.0.0.1_${port}`), `accounts/ holds ${caDirs.join(", ")}`);
    assert.ok(existsSync(join(accounts, `127.0.0.1_${port}`, "default")), "accounts/<ca>/default");
  });

  it("prints one parseable result document with --json", async () => {
    const r = await wile(issueArgs(env, ["json.example", "www.json.example"], ["--json"]));
    assert.equal(r.code, 0, dump(r));
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(r.stdout);
    } catch (e) {
      assert.fail(`stdout is not one JSON document (${(e as Error).message}):\n${r.stdout}`);
    }
    assert.equal(doc.name, "json.example");
    assert.deepEqual([...(doc.domains as string[])].sort(), ["json.example", "www.json.example"]);
    assert.equal(doc.keyType, "ec-256");
    const f = certFiles(home, "json.example");
    assert.equal(
      doc.serial,
      serialHex(f.cert),
      "serial in --json = serial of cert.pem, as openssl prints it",
    );
    assert.ok(!Number.isNaN(Date.parse(String(doc.notAfter))), `notAfter ${doc.notAfter}`);
    assert.equal(
      realpathSync(String(doc.path)),
      realpathSync(f.dir),
      "path points at the certificate directory",
    );
    const status = JSON.stringify(await env.certStatus(serialHex(f.cert)));
    assert.match(status, /Valid/, `Pebble does not know serial ${serialHex(f.cert)} as valid: ${status}`);
    assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/, "key material in output");
  });

  it("exits 3 for a certificate that is not due, and re-issues with --force keeping the old version", async () => {
    const f = certFiles(home, "single.example");
    const before = snapshot(home, "single.example");
    const oldSerial = serialHex(f.cert);

    const again = await wile(issueArgs(env, ["single.example"]));
    assert.equal(again.code, 3, dump(again));
    assert.match(again.stderr, /single\.example/, "the not-due message names the certificate");
    assert.match(again.stderr, /--force/, "the not-due message tells how to re-issue anyway");
    assert.deepEqual(snapshot(home, "single.example"), before, "a not-due issue must not change anything");

    const forced = await wile(issueArgs(env, ["single.example"], ["--force"]));
    assert.equal(forced.code, 0, dump(forced));
    checkIssued("single.example", ["single.example"], "ec-256");
    assert.notEqual(serialHex(f.cert), oldSerial, "--force must produce a new certificate");
    // The previous certificate is kept in archive/.
    const archive = join(f.dir, "archive");
    const kept = readdirSync(archive)
      .map((v) => join(archive, v, "cert.pem"))
      .filter((p) => existsSync(p) && readFileSync(p, "utf8") === before.cert);
    assert.equal(kept.length, 1, `old cert.pem not found in ${archive}: ${readdirSync(archive).join(", ")}`);
    assert.ok(lstatSync(f.cert).isSymbolicLink(), "cert.pem is a stable symlink");
  });

  it("lists every certificate with `wile list --json`", async () => {
    const r = await wile(["list", "--json"]);
    assert.equal(r.code, 0, dump(r));
    const doc = JSON.parse(r.stdout) as { certificates: Array<Record<string, unknown>> };
    assert.ok(Array.isArray(doc.certificates), r.stdout);
    const byName = new Map(doc.certificates.map((c) => [c.name, c]));
    const expected: Record<string, [string[], string]> = {
      "single.example": [["single.example"], "ec-256"],
      "multi.example": [["api.multi.example", "multi.example", "www.multi.example"], "ec-256"],
      "rsa.example": [["rsa.example"], "rsa-2048"],
      "ec384.example": [["ec384.example"], "ec-384"],
      "json.example": [["json.example", "www.json.example"], "ec-256"],
    };
    for (const [name, [domains, keyType]] of Object.entries(expected)) {
      const c = byName.get(name);
      assert.ok(c, `${name} missing from list: ${r.stdout}`);
      assert.deepEqual([...(c.domains as string[])].sort(), domains, `${name} domains`);
      assert.equal(c.keyType, keyType, `${name} keyType`);
      assert.equal(typeof c.daysLeft, "number", `${name} daysLeft`);
      assert.ok((c.daysLeft as number) > 0, `${name} daysLeft ${c.daysLeft}`);
      assert.ok(Date.parse(String(c.notAfter)) > Date.now(), `${name} notAfter ${c.notAfter}`);
      assert.ok(Date.parse(String(c.notBefore)) <= Date.now() + 60_000, `${name} notBefore ${c.notBefore}`);
      assert.match(String(c.issuer), /Pebble/i, `${name} issuer`);
      assert.equal(realpathSync(String(c.path)), realpathSync(certFiles(home, name).dir), `${name} path`);
    }
  });

  it("stops before the CA validates when the preflight finds the webroot is not served", async () => {
    const wrong = tempDir("wile-e2e-wrong-webroot-");
    const name = "preflight.example";
    const r = await wile(issueArgs(env, [name], [], wrong));
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /preflight\.example/, "message names the name");
    assert.match(
      r.stderr,
      /http:\/\/preflight\.example(:\d+)?\/\.well-known\/acme-challenge\/[A-Za-z0-9_-]+/,
      "message names the URL",
    );
    assert.ok(r.stderr.includes(wrong), `message names the webroot ${wrong}:\n${r.stderr}`);
    assert.ok(!hasStackTrace(r.stderr), `stack trace without -v:\n${r.stderr}`);
    assert.ok(otherFetches(env, name).length > 0, "the preflight itself should have reached nginx");
    assert.deepEqual(pebbleFetches(env, name), [], "Pebble's VA must not have been asked to validate");
    assert.deepEqual(filesUnder(join(wrong, ".well-known")), [], "challenge files left in the wrong webroot");
    assert.equal(existsSync(certFiles(home, name).cert), false, "no certificate stored");
  });

  it("reports a validation the CA rejects (name, URL fetched, CA detail) and keeps the earlier certificate", async () => {
    const name = "reject.example";
    const good = await wile(issueArgs(env, [name]));
    assert.equal(good.code, 0, dump(good));
    const before = snapshot(home, name);
    // A name never validated before rides along: Pebble might hand back the still valid
    // authorization of `name` (PEBBLE_AUTHZREUSE=0 makes that rare, not impossible).
    const fresh = `new.${name}`;
    const fetches = () => pebbleFetches(env, name).length + pebbleFetches(env, fresh).length;
    const fetchesBefore = fetches();

    const wrong = tempDir("wile-e2e-rejected-webroot-");
    const r = await wile(issueArgs(env, [name, fresh], ["--no-preflight", "--force"], wrong));
    assert.equal(r.code, 1, dump(r));
    assert.ok(fetches() > fetchesBefore, "Pebble's VA should have tried (and failed)");
    assert.match(r.stderr, /reject\.example/, "message names the name");
    assert.match(
      r.stderr,
      new RegExp(`http://(new\\.)?reject\\.example:${env.httpPort}/\\.well-known/acme-challenge/`),
      `message names the URL the CA fetched:\n${r.stderr}`,
    );
    // Pebble 2.4.0's detail: "Non-200 status code from HTTP: <url> returned 404".
    assert.match(r.stderr, /404/, "message carries the CA's detail");
    assert.ok(!hasStackTrace(r.stderr), `stack trace without -v:\n${r.stderr}`);
    assert.deepEqual(filesUnder(join(wrong, ".well-known")), [], "challenge files left in the wrong webroot");
    assert.deepEqual(filesUnder(join(env.webroot, ".well-known")), [], "files left in nginx's webroot");
    assert.deepEqual(snapshot(home, name), before, "the earlier certificate must be untouched");
    const km = keyMatchesCert(certFiles(home, name).privkey, certFiles(home, name).cert);
    assert.ok(km.match, "stable key and certificate still belong together");
  });

  it("fails with a clear message and exit 1 when the CA cannot be reached", async () => {
    const { freePort } = await import("../helpers/testenv");
    const port = await freePort();
    const url = `https://127.0.0.1:${port}/dir`;
    const args = issueArgs(env, ["unreachable.example"]);
    args[args.indexOf("--server") + 1] = url;
    const r = await wile(args, 120_000);
    assert.equal(r.code, 1, dump(r));
    assert.ok(r.stderr.includes(`127.0.0.1:${port}`), `message names the CA address:\n${r.stderr}`);
    assert.match(r.stderr, /connect|reach|refused|unavailable/i, "message says the connection failed");
    assert.ok(!hasStackTrace(r.stderr), `stack trace without -v:\n${r.stderr}`);
    assert.ok(r.ms < 90_000, `took ${r.ms} ms`);
  });
});
