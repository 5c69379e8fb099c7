/**
 * End to end: `wile issue ... --deploy exchange` against a real Pebble, pushing the PKCS#12 file to
 * a real OpenSSH server on 127.0.0.1 (test/helpers/sshd.ts). Exchange cannot run here: the remote
 * PowerShell is test/fixtures/powershell-stand-in (named with --exchange-powershell), which records
 * its argv, the script on its stdin and the PFX it was pointed at, and answers like the real script.
 * The first issue gives --exchange-identity relative to the directory wile starts in; the runs
 * after it start elsewhere, as cron does. A SIGTERM during the import removes the local temp dir
 * holding the PFX.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createSecureContext } from "node:tls";
import { exchangeScript } from "../../src/deploy/exchange";
import { openssl, pemBlocks, serialHex } from "../helpers/certs";
import { certFiles, issueArgs } from "../helpers/e2e";
import { leftRunning } from "../helpers/processes";
import { ensureTestUser, type Sshd, startSshd } from "../helpers/sshd";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { repoRoot, runWile, tempDir } from "../helpers/wile";

const NAME = "exchange.wile.test";

let env: TestEnv;
let sshd: Sshd;
let home: string;
/** In the test user's home: the stand-in, its calls/ and the PFX drop directory. */
let remote: string;
let drop: string;

before(async () => {
  env = await startTestEnv();
  sshd = await startSshd();
  home = join(tempDir("wile-e2e-exchange-"), "wile");
  remote = join(sshd.userHome, `wile-exchange-e2e-${randomBytes(4).toString("hex")}`);
  drop = join(remote, "drop");
  mkdirSync(drop, { recursive: true });
  copyFileSync(join(repoRoot, "test", "fixtures", "powershell-stand-in"), join(remote, "powershell"));
  const { uid, gid } = ensureTestUser(sshd.user);
  for (const p of [remote, drop, join(remote, "powershell")]) chownSync(p, uid, gid);
});

after(async () => {
  if (remote && !process.env.WILE_KEEP_TMP) rmSync(remote, { recursive: true, force: true });
  await sshd?.stop();
  await env?.stop();
});

const exchangeArgs = (identity = sshd.identityFile) => [
  "--deploy",
  "exchange",
  "--exchange-host",
  `${sshd.user}@127.0.0.1`,
  "--exchange-port",
  String(sshd.port),
  "--exchange-identity",
  identity,
  "--exchange-option",
  `UserKnownHostsFile=${sshd.knownHostsFile}`,
  "--exchange-option",
  "GlobalKnownHostsFile=/dev/null",
  "--exchange-services",
  "IIS,SMTP,IMAP",
  "--exchange-dir",
  drop,
  "--exchange-powershell",
  join(remote, "powershell"),
];

const wile = (args: string[], cwd?: string) => runWile(args, { home, timeoutMs: 120_000, cwd });

interface Call {
  argv: string[];
  stdin: string;
  pfx: Buffer | undefined;
}

function calls(): Call[] {
  const dir = join(remote, "calls");
  if (!existsSync(dir)) return [];
  const n = readdirSync(dir).filter((f) => f.endsWith(".stdin")).length;
  return Array.from({ length: n }, (_, i) => {
    const p = (ext: string) => join(dir, `${i + 1}.${ext}`);
    return {
      argv: readFileSync(p("argv"), "utf8").split("\n").slice(0, -1),
      stdin: readFileSync(p("stdin"), "utf8"),
      pfx: existsSync(p("pfx")) ? readFileSync(p("pfx")) : undefined,
    };
  });
}

/** SHA-1 of the leaf's DER as Windows shows it, computed by openssl. */
function thumbprint(certFile: string): string {
  return (
    openssl(["x509", "-in", certFile, "-noout", "-fingerprint", "-sha1"])
      .trim()
      .split("=")[1]
      ?.replace(/:/g, "") ?? ""
  );
}

function passwordIn(script: string): string {
  const m = /^ {2}\$password = ConvertTo-SecureString -String '((?:[^']|'')*)' -AsPlainText -Force$/m.exec(
    script,
  );
  assert.ok(m?.[1] !== undefined, `no password line in:\n${script}`);
  return m[1].replace(/''/g, "'");
}

/** The key, leaf and chain the PFX holds, read by openssl with `password`. */
function openPfx(pfx: Buffer, password: string) {
  const file = join(tempDir("wile-e2e-pfx-"), "arrived.pfx");
  writeFileSync(file, pfx);
  const pass = ["-passin", `pass:${password}`];
  const info = openssl(["pkcs12", "-in", file, ...pass, "-nodes", "-nocerts"]);
  return {
    keys: pemBlocks(info),
    leaf: pemBlocks(openssl(["pkcs12", "-in", file, ...pass, "-nokeys", "-clcerts"])),
    chain: pemBlocks(openssl(["pkcs12", "-in", file, ...pass, "-nokeys", "-cacerts"])),
    friendlyNames: [
      ...openssl(["pkcs12", "-in", file, ...pass, "-nodes"]).matchAll(/friendlyName: (.*)/g),
    ].map((m) => m[1]),
    file,
  };
}

describe("wile issue --deploy exchange (ssh + PowerShell stand-in)", () => {
  let firstPassword = "";

  it("issues, copies the PFX with scp and sends the import script on ssh's stdin", async () => {
    // A key named relative to where wile starts: stored absolute, since renewals start elsewhere.
    const r = await wile(
      issueArgs(env, [NAME], exchangeArgs(basename(sshd.identityFile))),
      dirname(sshd.identityFile),
    );
    assert.equal(r.code, 0, `wile failed:\n${r.stderr}\n${r.stdout}`);
    const f = certFiles(home, NAME);
    const thumb = thumbprint(f.cert);
    assert.match(thumb, /^[0-9A-F]{40}$/);

    const [call, ...more] = calls();
    assert.equal(more.length, 0, "one PowerShell run");
    assert.ok(call);
    assert.deepEqual(call.argv, ["-NoProfile", "-NonInteractive", "-Command", "-"]);

    const remotePath = `${drop}/wile-${NAME}-${thumb.slice(0, 8)}.pfx`;
    const password = passwordIn(call.stdin);
    firstPassword = password;
    assert.match(password, /^[A-Za-z0-9_-]{24}$/, "a random password");
    const lines = call.stdin.split("\n");
    for (const expected of [
      "$ErrorActionPreference = 'Stop'",
      `  $path = '${remotePath}'`,
      `  $thumbprint = '${thumb}'`,
      "  $services = 'IIS,SMTP,IMAP'",
      `  $oldPrefix = 'wile ${NAME} '`,
      "  $removeOld = $false",
      "      $null = Import-ExchangeCertificate -FileData ([System.IO.File]::ReadAllBytes($path)) -Password $password -PrivateKeyExportable $false",
      "  $null = Enable-ExchangeCertificate -Thumbprint $thumbprint -Services $services -Force",
    ]) {
      assert.ok(lines.includes(expected), `script lacks the line ${expected}:\n${call.stdin}`);
    }
    assert.equal(
      call.stdin,
      exchangeScript({
        pfxPath: remotePath,
        password,
        thumbprint: thumb,
        services: ["IIS", "SMTP", "IMAP"],
        oldFriendlyNamePrefix: `wile ${NAME} `,
        removeOld: false,
      }),
    );

    // The PFX that arrived opens with that password and holds exactly wile's key, leaf and chain.
    assert.ok(call.pfx, "the PFX arrived at the remote path");
    const got = openPfx(call.pfx, password);
    assert.deepEqual(got.keys, pemBlocks(openssl(["pkey", "-in", f.privkey])));
    assert.deepEqual(got.leaf, pemBlocks(readFileSync(f.cert, "utf8")));
    assert.deepEqual(got.chain, pemBlocks(readFileSync(f.chain, "utf8")));
    const notAfter = openssl(["x509", "-in", f.cert, "-noout", "-enddate", "-dateopt", "iso_8601"]);
    const date = notAfter.split("=")[1]?.trim().slice(0, 10);
    assert.deepEqual(got.friendlyNames, [`wile ${NAME} ${date}`, `wile ${NAME} ${date}`]);
    createSecureContext({ pfx: call.pfx, passphrase: password });
    assert.throws(() => createSecureContext({ pfx: call.pfx, passphrase: "wrong" }));

    // The stand-in deleted it, as the real script does; nothing else was left in the drop dir.
    assert.deepEqual(readdirSync(drop), []);
    // The random password went only through stdin: not in renewal.json, the output or the log.
    // renewal.json keeps what was given (switches not given, like --exchange-remove-old, are not).
    const renewal = JSON.parse(readFileSync(f.renewal, "utf8")) as { deploy: Array<Record<string, unknown>> };
    assert.deepEqual(renewal.deploy, [
      {
        kind: "exchange",
        hosts: [`${sshd.user}@127.0.0.1`],
        port: sshd.port,
        identity: sshd.identityFile,
        sshOptions: [`UserKnownHostsFile=${sshd.knownHostsFile}`, "GlobalKnownHostsFile=/dev/null"],
        services: ["IIS", "SMTP", "IMAP"],
        dir: drop,
        powershell: join(remote, "powershell"),
      },
    ]);
    const log = existsSync(join(home, "logs", "wile.log"))
      ? readFileSync(join(home, "logs", "wile.log"), "utf8")
      : "";
    for (const text of [r.stdout, r.stderr, readFileSync(f.renewal, "utf8"), log, call.argv.join(" ")]) {
      assert.ok(!text.includes(password), "the PFX password leaked");
    }
  });

  it("wile deploy NAME, started in another directory, replays the stored settings with a new password", async () => {
    const r = await wile(["deploy", NAME]);
    assert.equal(r.code, 0, `wile deploy failed:\n${r.stderr}`);
    const all = calls();
    assert.equal(all.length, 2);
    const second = all[1] as Call;
    const password = passwordIn(second.stdin);
    assert.notEqual(password, firstPassword);
    assert.ok(second.pfx);
    createSecureContext({ pfx: second.pfx, passphrase: password });
  });

  it("a remote WILE-ERROR fails the run with its message; the new certificate stays stored", async () => {
    const f = certFiles(home, NAME);
    const before = serialHex(f.cert);
    writeFileSync(join(remote, "fail"), "Import failed: The PFX file could not be imported (stand-in)");
    try {
      const r = await wile(issueArgs(env, [NAME], [...exchangeArgs(), "--force"]));
      assert.equal(r.code, 1, `expected exit 1:\n${r.stderr}`);
      assert.match(r.stderr, /Import failed: The PFX file could not be imported \(stand-in\)/);
      assert.match(r.stderr, new RegExp(`${sshd.user}@127\\.0\\.0\\.1`));
      const after = serialHex(f.cert);
      assert.notEqual(after, before, "the renewed certificate is stored although the deploy failed");
      const last = calls().at(-1) as Call;
      assert.match(last.stdin, new RegExp(`\\$thumbprint = '${thumbprint(f.cert)}'`));
    } finally {
      rmSync(join(remote, "fail"), { force: true });
    }
  });

  it("--pfx-legacy with a given password holding ' $ and ` reaches the remote side intact", async () => {
    const password = "it's $(x) `y` pw";
    const r = await wile(["deploy", NAME, ...exchangeArgs(), "--pfx-legacy", "--pfx-password", password]);
    assert.equal(r.code, 0, `wile deploy failed:\n${r.stderr}`);
    const last = calls().at(-1) as Call;
    assert.equal(passwordIn(last.stdin), password);
    assert.ok(last.pfx);
    const file = openPfx(last.pfx, password).file;
    const info = spawnSync(
      "openssl",
      ["pkcs12", "-info", "-in", file, "-passin", `pass:${password}`, "-nodes"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stderr, /MAC: sha1/);
    assert.match(info.stderr, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC/);
    createSecureContext({ pfx: last.pfx, passphrase: password });
    assert.ok(!r.stderr.includes(password) && !r.stdout.includes(password));
  });

  it("an unreachable host fails with the scp step named", async () => {
    const args = exchangeArgs();
    args[args.indexOf(String(sshd.port))] = "1";
    const r = await wile(["deploy", NAME, ...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /copying the PKCS#12 file to .* failed/);
  });

  it("SIGTERM during the import: the local temp dir holding the PFX is removed, ssh stopped, exit 143 (bug 5)", async () => {
    const tmp = tempDir("wile-e2e-exchange-tmpdir-");
    const hang = join(remote, "hang");
    writeFileSync(hang, "");
    let during: string[] = [];
    try {
      const r = await runWile(["deploy", NAME, ...exchangeArgs()], {
        home,
        timeoutMs: 120_000,
        env: { TMPDIR: tmp },
        interrupt: {
          when: /importing [0-9A-F]{40} on /,
          signal: "SIGTERM",
          afterMs: 500,
          before: () => {
            during = readdirSync(tmp);
          },
        },
      });
      assert.ok(r.interrupted, r.stderr);
      assert.equal(r.code, 143, r.stderr);
      assert.match(r.stderr, /interrupted \(SIGTERM\): cleaning up/);
      assert.equal(
        during.filter((n) => n.startsWith("wile-exchange-")).length,
        1,
        `in TMPDIR then: ${during}`,
      );
      assert.deepEqual(readdirSync(tmp), [], "the temp dir with the PFX is gone");
      assert.deepEqual(await leftRunning("ssh", join(remote, "powershell")), [], "no ssh left running");
    } finally {
      rmSync(hang, { force: true });
      // The real script deletes the copied PFX; the hung stand-in did not get that far.
      for (const f of readdirSync(drop)) rmSync(join(drop, f), { force: true });
    }
  });
});
