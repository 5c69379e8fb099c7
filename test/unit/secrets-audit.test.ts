/**
 * The secrets audit of the e2e suite (test/helpers/secrets-audit.ts, scripts/secrets-audit.mjs)
 * must find planted leaks: a scanner that finds nothing would make the audit pass for ever.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { findKeyMaterial, findSecrets, secretsFromArgv } from "../helpers/secret-scan";
import { auditSecret, scanTree } from "../helpers/secrets-audit";
import { repoRoot } from "../helpers/wile";

const base = mkdtempSync(join(tmpdir(), "wile-unit-audit-"));
after(() => rmSync(base, { recursive: true, force: true }));

const ecKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
const keyPem = ecKey.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
const jwk = ecKey.privateKey.export({ format: "jwk" });
const HMAC = "zJmT4-1aQ3Xw9b_Kp0LsVtRu7YhQe2Nc"; // base64url, as --eab-hmac-key takes it
const hmacHex = Buffer.from(HMAC, "base64url").toString("hex");
const PFX_PW = "correct horse battery";
const argv = ["issue", "-d", "a.example", "--eab-hmac-key", HMAC, `--pfx-password=${PFX_PW}`];

function put(path: string, content: string, mode = 0o600): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

describe("secret scanner", () => {
  it("finds PEM private keys of every flavour and JWK private members, not public keys", () => {
    assert.deepEqual(findKeyMaterial(`x\n${keyPem}`), ["PEM private key"]);
    const body = "MHcCAQEEIBL0c3xZ8Hq1bH5Jd7R4n8Qx2bY6a9GJk1mC0eZf3vWXoAoGCCqGSM49";
    assert.deepEqual(findKeyMaterial(`-----BEGIN EC PRIVATE KEY-----\n${body}`), ["PEM private key (EC)"]);
    // JSON-escaped (a --json document), and flattened into a log line.
    assert.deepEqual(findKeyMaterial(JSON.stringify({ key: keyPem })), ["PEM private key"]);
    assert.deepEqual(findKeyMaterial(`INFO -----BEGIN PRIVATE KEY----- | ${body}`), ["PEM private key"]);
    // The marker alone, as wile's own code holds it, is no key.
    assert.deepEqual(findKeyMaterial('const l = "-----BEGIN PRIVATE KEY-----";\nfoo()'), []);
    assert.deepEqual(findKeyMaterial(`account ${JSON.stringify({ jwk })}`), ['JWK private member "d"']);
    // JSON quoted inside a JSON string or a log line.
    assert.deepEqual(findKeyMaterial(JSON.stringify({ msg: JSON.stringify(jwk) })), [
      'JWK private member "d"',
    ]);
    const pub = ecKey.publicKey.export({ format: "jwk" });
    assert.deepEqual(findKeyMaterial(`${JSON.stringify(pub)} -----BEGIN PUBLIC KEY-----`), []);
    assert.deepEqual(findKeyMaterial(JSON.stringify({ kty: "oct", k: "c2VjcmV0" })), [
      'JWK private member "k"',
    ]);
  });

  it("learns secrets from argv and finds them as given, decoded, in base64, base64url and hex", () => {
    const secrets = secretsFromArgv(argv);
    assert.deepEqual(secrets, [
      { kind: "eab-hmac-key", value: HMAC },
      { kind: "pfx-password", value: PFX_PW },
    ]);
    const raw = Buffer.from(HMAC, "base64url");
    for (const form of [HMAC, hmacHex, raw.toString("base64"), raw.toString("latin1")]) {
      assert.deepEqual(
        findSecrets(
          Buffer.from(`..${form}..`, form === raw.toString("latin1") ? "latin1" : "utf8"),
          secrets,
        ).map((s) => s.kind),
        ["eab-hmac-key"],
        form,
      );
    }
    assert.deepEqual(
      findSecrets(Buffer.from(Buffer.from(PFX_PW).toString("base64")), secrets).map((s) => s.kind),
      ["pfx-password"],
    );
    assert.deepEqual(findSecrets(Buffer.from("nothing here"), secrets), []);
  });
});

describe("file policy (scanTree)", () => {
  it("allows keys and passwords only where design.md puts them, at 0600; reports everything else", () => {
    const root = join(base, "tree");
    const home = join(root, "home");
    const deploy = join(root, "deploy");
    put(join(home, "accounts", "ca_443", "default", "account.key"), keyPem);
    put(join(home, "certs", "a", "archive", "v1", "privkey.pem"), keyPem);
    put(join(home, "certs", "a", "archive", "v2", "privkey.pem"), keyPem, 0o644);
    // The temp file of an atomic write that a kill -9 left: still the key's place, and 0600.
    put(join(home, "certs", "a", "archive", "v3", ".privkey.pem.tmp-0a1b2c3d4e5f"), keyPem);
    put(join(home, "certs", "a", "archive", "v3", ".cert.pem.tmp-0a1b2c3d4e5f"), keyPem);
    put(join(home, "certs", "a", "renewal.json"), JSON.stringify({ pfxPassword: PFX_PW }));
    put(join(home, "certs", "a", "state.json"), JSON.stringify({ note: PFX_PW }));
    put(join(home, "logs", "wile.log"), `2026 INFO [1] key:\n${keyPem}`);
    put(join(home, "accounts", "ca_443", "default", "account.json"), JSON.stringify({ key: jwk }));
    put(join(deploy, "key.pem"), keyPem);
    put(join(deploy, "group-key.pem"), keyPem, 0o640);
    put(join(deploy, "hook-output.txt"), `hmac=${hmacHex}\n`, 0o644);
    put(join(deploy, "site.pfx"), "binary");
    put(join(deploy, "site.pfx.pass"), "Random-Pass-4711\n");
    put(join(deploy, "reload.log"), "reloaded with Random-Pass-4711\n", 0o644);
    // A password only a renewal.json holds (written by a test) is learned from there.
    put(
      join(home, "certs", "b", "renewal.json"),
      JSON.stringify({ deploy: [{ pfxPassword: "Stored-Pass-0815" }] }),
    );
    put(join(home, "certs", "b", "state.json"), JSON.stringify({ note: "Stored-Pass-0815" }));

    const pol = { homes: [home], secrets: secretsFromArgv(argv), groupModes: [] as number[] };
    const r = scanTree(root, pol);
    const got = r.leaks.map((l) => `${l.file.slice(root.length + 1)}: ${l.what}`).sort();
    assert.deepEqual(
      got,
      [
        'home/accounts/ca_443/default/account.json: JWK private member "d"',
        "home/certs/a/archive/v2/privkey.pem: PEM private key",
        "home/certs/a/archive/v3/.cert.pem.tmp-0a1b2c3d4e5f: PEM private key",
        "home/certs/a/state.json: pfx-password",
        "home/certs/b/state.json: pfx-password",
        "home/logs/wile.log: PEM private key",
        "deploy/group-key.pem: PEM private key",
        "deploy/hook-output.txt: eab-hmac-key",
        "deploy/reload.log: pfx-password",
      ].sort(),
    );
    assert.match(r.leaks.find((l) => l.file.endsWith("v2/privkey.pem"))?.why ?? "", /mode 0644/);
    assert.deepEqual(
      r.learned.map((s) => s.value).sort(),
      ["Random-Pass-4711", PFX_PW, "Stored-Pass-0815"].sort(),
    );
    assert.equal(r.files, 17);
    assert.equal(r.logLines, 1 + keyPem.split("\n").length - 1);

    // 0640 is fine outside the home once a run asked for a group (--owner u:g) or that mode.
    const again = scanTree(join(deploy, "group-key.pem"), { ...pol, groupModes: [0o640] });
    assert.deepEqual(again.leaks, []);
    assert.equal(again.keyFiles.length, 1);
  });
});

describe("scripts/secrets-audit.mjs", () => {
  function audit(dir: string) {
    return spawnSync(process.execPath, [join(repoRoot, "scripts", "secrets-audit.mjs"), dir], {
      cwd: repoRoot,
      encoding: "utf8",
    });
  }

  it("fails listing a secret printed by a run and a leak a scan found, never printing the value", () => {
    const dir = mkdtempSync(join(base, "audit-"));
    const run = (stdout: string, stderr = "") =>
      `${JSON.stringify({ test: "test/e2e/x.test.ts", argv, envKeys: [], code: 0, stdout, stderr })}\n`;
    writeFileSync(
      join(dir, "runs-1.jsonl"),
      run('{"ok":true}\n') + run("", `oops ${Buffer.from(HMAC, "base64url").toString("base64")}\n`),
    );
    const scan = scanTree(join(base, "tree", "home", "logs"), {
      homes: [join(base, "tree", "home")],
      secrets: [],
      groupModes: [],
    });
    writeFileSync(
      join(dir, "files-1.jsonl"),
      `${JSON.stringify({ test: "test/e2e/x.test.ts", root: "r", ...scan })}\n`,
    );
    const r = audit(dir);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /runs=2 .*leaks=2/);
    assert.match(
      r.stderr,
      /LEAK test\/e2e\/x\.test\.ts: eab-hmac-key in stderr of run 2 \(wile issue .*--eab-hmac-key \[secret\]/,
    );
    assert.match(r.stderr, /LEAK test\/e2e\/x\.test\.ts: PEM private key in .*wile\.log/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(HMAC) && !`${r.stdout}${r.stderr}`.includes(PFX_PW));
  });

  it("a secret registered with auditSecret (a DNS API token in the environment) is found in a run's output", () => {
    const dir = mkdtempSync(join(base, "audit-"));
    const token = "dns-Api-Token-0123456789abcdef";
    const saved = process.env.WILE_TEST_AUDIT_DIR;
    process.env.WILE_TEST_AUDIT_DIR = dir;
    try {
      auditSecret("dns-api-token", token);
    } finally {
      if (saved === undefined) delete process.env.WILE_TEST_AUDIT_DIR;
      else process.env.WILE_TEST_AUDIT_DIR = saved;
    }
    const run = (stderr: string) =>
      `${JSON.stringify({ test: "test/e2e/d.test.ts", argv: ["issue"], envKeys: [], code: 1, stdout: "", stderr })}\n`;
    writeFileSync(join(dir, "runs-1.jsonl"), run("clean\n") + run(`error: token ${token} refused\n`));
    const r = audit(dir);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /LEAK test\/e2e\/d\.test\.ts: dns-api-token in stderr of run 2/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(token));
  });

  it("passes a clean run with its figures, and fails a directory without runs", () => {
    const dir = mkdtempSync(join(base, "audit-"));
    writeFileSync(
      join(dir, "runs-1.jsonl"),
      `${JSON.stringify({ test: "t", argv, envKeys: [], code: 0, stdout: "a\nb\n", stderr: "c\n" })}\n`,
    );
    const ok = audit(dir);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /test-files=1 runs=1 output-lines=3 .*leaks=0/);
    const empty = audit(mkdtempSync(join(base, "audit-")));
    assert.equal(empty.status, 1);
    assert.match(empty.stderr, /no runs recorded/);
  });
});
