import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseCertificate } from "../../../src/crypto/x509";
import { fullchainThenKey } from "../../../src/deploy/pem-bundle";
import { targetKind } from "../../../src/deploy/registry";
import { parseSshTarget, type SshConfig, SshDeployTarget, sshKind } from "../../../src/deploy/ssh";
import type { DeployContext } from "../../../src/deploy/target";
import { silentLogger } from "../../../src/util/log";
import {
  configFromArgv,
  entryError,
  targetFromArgv,
  usageError,
  valuesFromEntry,
} from "../../helpers/deploy-kinds";
import { deployRoundTrip } from "../../helpers/renewal";

let tmp = "";
let bin = "";
let log = "";
let ctx: DeployContext;
const savedPath = process.env.PATH;

/**
 * Stand-ins for ssh and scp: each records its argv as one JSON line in $FAKE_SSH_LOG. The "remote"
 * host is this machine: scp copies into the DIR of its last argument, ssh runs its last argument
 * with sh. A host named in $FAKE_SSH_DOWN fails the way ssh does (stderr, exit 255).
 */
const FAKE = `#!${process.execPath}
const fs = require("node:fs");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const args = process.argv.slice(2);
const me = path.basename(process.argv[1]);
fs.appendFileSync(process.env.FAKE_SSH_LOG, JSON.stringify([me, ...args]) + "\\n");
const rest = args.slice(args.indexOf("--") + 1);
const dest = me === "scp" ? rest[rest.length - 1] : rest[0];
const host = dest.replace(/^.*@/, "").replace(/:.*$/, "");
if (host === process.env.FAKE_SSH_DOWN) {
  process.stderr.write("ssh: connect to host " + host + " port 22: Connection refused\\n");
  process.exit(255);
}
if (me === "scp") {
  const dir = dest.slice(dest.indexOf(":") + 1);
  for (const f of rest.slice(0, -1)) fs.copyFileSync(f, path.join(dir, path.basename(f)));
  process.exit(0);
}
const r = spawnSync("/bin/sh", ["-c", rest[1]], { stdio: "inherit" });
process.exit(r.status ?? 1);
`;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wile-ssh-unit-"));
  bin = join(tmp, "bin");
  mkdirSync(bin);
  for (const name of ["ssh", "scp"]) {
    writeFileSync(join(bin, name), FAKE, { mode: 0o755 });
    chmodSync(join(bin, name), 0o755);
  }
  log = join(tmp, "calls.log");
  process.env.PATH = `${bin}:${savedPath}`;
  process.env.FAKE_SSH_LOG = log;
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
      "/CN=s.example",
      "-keyout",
      join(tmp, "k.pem"),
      "-out",
      join(tmp, "c.pem"),
    ],
    { stdio: "ignore" },
  );
  const cert = readFileSync(join(tmp, "c.pem"), "utf8");
  const info = parseCertificate(cert);
  const dir = join(tmp, "home", "certs", "s.example");
  ctx = {
    name: "s.example",
    identifiers: [
      { type: "dns", value: "s.example" },
      { type: "dns", value: "www.s.example" },
    ],
    serverName: "s.example",
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
      chainPem: `${cert}`,
      fullchainPem: `${cert}${cert}`,
    },
    serialHex: info.serialHex,
    notAfter: info.notAfter,
    leafDer: info.der,
    home: join(tmp, "home"),
    logger: silentLogger,
    // verify does not wait: a test service serves the new certificate already, or never will.
    verifyWaitMs: 0,
  };
});

after(() => {
  process.env.PATH = savedPath;
  delete process.env.FAKE_SSH_LOG;
  rmSync(tmp, { recursive: true, force: true });
});

const fromArgv = (argv: string[]) => configFromArgv(sshKind, argv);

function calls(): string[][] {
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as string[]);
}

describe("ssh options", () => {
  test("is registered", () => {
    assert.equal(targetKind("ssh"), sshKind);
  });

  test("every option, identity made absolute; the values with the defaults filled in", () => {
    const c = fromArgv([
      "--ssh-target",
      "deploy@web1.example:/etc/ssl/wile",
      "--ssh-target",
      "web2:certs",
      "--ssh-port",
      "2222",
      "--ssh-identity",
      "keys/id_ed25519",
      "--ssh-option",
      "UserKnownHostsFile=/etc/wile/known_hosts",
      "--ssh-option",
      "ConnectTimeout=5",
      "--ssh-combined",
      "haproxy.pem",
      "--ssh-reload",
      "sudo systemctl reload nginx",
    ]);
    assert.deepEqual(c, {
      kind: "ssh",
      targets: ["deploy@web1.example:/etc/ssl/wile", "web2:certs"],
      port: 2222,
      identity: join(process.cwd(), "keys/id_ed25519"),
      options: ["UserKnownHostsFile=/etc/wile/known_hosts", "ConnectTimeout=5"],
      combined: "haproxy.pem",
      reload: "sudo systemctl reload nginx",
    });
    const minimal = fromArgv(["--ssh-target", "h:/d"]);
    assert.deepEqual(minimal, { kind: "ssh", targets: ["h:/d"] });
    assert.deepEqual(valuesFromEntry(sshKind, minimal), { targets: ["h:/d"], options: [] });
    assert.equal(
      targetFromArgv(sshKind, ["--ssh-target", "h:/d", "--ssh-reload", "r"]).describe(),
      "ssh (h:/d, remote reload)",
    );
  });

  test("targets: user, host, [IPv6], dir", () => {
    assert.deepEqual(parseSshTarget("u@h.example:/a/b"), {
      spec: "u@h.example:/a/b",
      user: "u",
      host: "h.example",
      dir: "/a/b",
    });
    assert.deepEqual(parseSshTarget("h:."), { spec: "h:.", host: "h", dir: "." });
    assert.deepEqual(parseSshTarget("u@[2001:db8::1]:/x"), {
      spec: "u@[2001:db8::1]:/x",
      user: "u",
      host: "2001:db8::1",
      dir: "/x",
    });
  });

  test("bad input is a usage error naming the option", () => {
    const bad: Array<[string[], RegExp]> = [
      [[], /^--deploy ssh needs --ssh-target \[USER@\]HOST:DIR$/],
      [["--ssh-target", "host.example"], /^--ssh-target: "host\.example" is not \[USER@\]HOST:DIR$/],
      [["--ssh-target", "host.example:"], /^--ssh-target: "host\.example:" is not usable: no DIR after/],
      [
        ["--ssh-target=-oProxyCommand=x:/d"],
        /^--ssh-target: "-oProxyCommand=x:\/d" is not usable: "-oProxyCommand=x" must not start with -/,
      ],
      [["--ssh-target", "h;x:/d"], /^--ssh-target: "h;x:\/d" is not usable: "h;x" has a bad host "h;x"/],
      [["--ssh-target", "h:/a b"], /^--ssh-target: "h:\/a b" is not usable: the remote directory "\/a b"/],
      [["--ssh-target", "h:~/x"], /^--ssh-target: "h:~\/x" is not usable: .*\(no spaces, no ~\)/],
      [["--ssh-target", "h:-x"], /^--ssh-target: "h:-x" is not usable: .*and not start with -$/],
      [["--ssh-target", "u;x@h:/d"], /^--ssh-target: "u;x@h:\/d" is not usable: .*bad user name "u;x"/],
      [["--ssh-target", "h:/d", "--ssh-target", "h:/d"], /^--deploy ssh: --ssh-target h:\/d is given twice$/],
      [
        ["--ssh-target", "h:/d", "--ssh-port", "99999"],
        /^--ssh-port "99999": must be a port number from 1 to 65535$/,
      ],
      [["--ssh-target", "h:/d", "--ssh-port", "22x"], /^--ssh-port "22x": must be a port number/],
      [
        ["--ssh-target", "h:/d", "--ssh-option=-oX=y"],
        /^--ssh-option: "-oX=y" is not an ssh option NAME=VALUE/,
      ],
      [["--ssh-target", "h:/d", "--ssh-option", "Novalue"], /^--ssh-option: "Novalue" is not an ssh option/],
      [["--ssh-target", "h:/d", "--ssh-identity", ""], /^--ssh-identity needs a value \(FILE\)$/],
      [
        ["--ssh-target", "h:/d", "--ssh-combined", "../x.pem"],
        /^--ssh-combined "\.\.\/x\.pem": must be a plain file name/,
      ],
      [
        ["--ssh-target", "h:/d", "--ssh-combined", "privkey.pem"],
        /^--ssh-combined "privkey\.pem": would overwrite the file of that name$/,
      ],
    ];
    for (const [argv, re] of bad) assert.throws(() => fromArgv(argv), usageError(re), argv.join(" "));
  });

  test("renewal.json round trip, and broken entries naming the field", () => {
    const configs = [
      fromArgv([
        "--ssh-target",
        "u@h:/d",
        "--ssh-port",
        "22",
        "--ssh-identity",
        "/k",
        "--ssh-option",
        "A=b",
        "--ssh-reload",
        "r",
        "--ssh-combined",
        "c.pem",
      ]),
      fromArgv(["--ssh-target", "h:d"]),
    ];
    assert.deepEqual(deployRoundTrip(sshKind, configs), configs);
    assert.throws(
      () => valuesFromEntry(sshKind, { targets: [] }, "w"),
      entryError(
        "w",
        "deploy[0]",
        /^\(ssh\) is inconsistent: needs at least one "targets" \[USER@\]HOST:DIR\.$/,
      ),
    );
    assert.throws(
      () => valuesFromEntry(sshKind, {}, "w"),
      entryError("w", "deploy[0].targets", /^is missing\.$/),
    );
    assert.throws(
      () => valuesFromEntry(sshKind, { targets: ["h"] }, "w"),
      entryError("w", "deploy[0].targets", /^"h" is not \[USER@\]HOST:DIR\.$/),
    );
    assert.throws(
      () => valuesFromEntry(sshKind, { targets: ["h:/d", "h:/d"] }, "w"),
      entryError("w", "deploy[0]", /^\(ssh\) is inconsistent: "targets" h:\/d is given twice\.$/),
    );
    assert.throws(
      () => valuesFromEntry(sshKind, { targets: ["h:/d"], port: "22x" }, "w"),
      entryError("w", "deploy[0].port", /^must be a port number from 1 to 65535\.$/),
    );
    assert.throws(
      () => valuesFromEntry(sshKind, { targets: ["h:/d"], port: 65536 }, "w"),
      entryError("w", "deploy[0].port", /^must be a port number from 1 to 65535\.$/),
    );
    assert.throws(
      () => valuesFromEntry(sshKind, { targets: ["h:/d"], identity: "k" }, "w"),
      entryError("w", "deploy[0].identity", /^must be an absolute path\.$/),
    );
    assert.throws(
      () => valuesFromEntry(sshKind, { targets: ["h:/d"], options: ["-oX=y"] }, "w"),
      entryError("w", "deploy[0].options", /^"-oX=y" is not an ssh option NAME=VALUE/),
    );
    assert.throws(
      () => valuesFromEntry(sshKind, { targets: ["h:/d"], combined: "a/b" }, "w"),
      entryError("w", "deploy[0].combined", /^must be a plain file name/),
    );
  });
});

describe("ssh deploy with stand-in ssh and scp", () => {
  test("the exact command lines, the files with their modes, the reload with its environment", async () => {
    writeFileSync(log, "");
    const d1 = mkdtempSync(join(tmp, "r1-"));
    const d2 = mkdtempSync(join(tmp, "r2-"));
    writeFileSync(join(d1, "privkey.pem"), "old key", { mode: 0o644 });
    const config: SshConfig = {
      targets: [`u@host1:${d1}`, `host2:${d2}`],
      port: 2222,
      identity: join(tmp, "id"),
      options: ["UserKnownHostsFile=/k h"],
      combined: "both.pem",
      reload:
        'printf "%s|%s|%s" "$WILE_CERT_NAME" "$WILE_DOMAINS" "$WILE_KEY_PATH" > reloaded; pwd >> reloaded',
    };
    writeFileSync(join(tmp, "id"), "key");
    const t = sshKind.create(config);
    assert.equal(t.describe(), `ssh (u@host1:${d1}, host2:${d2}, remote reload)`);
    await t.check(ctx);
    await t.deploy(ctx);

    for (const d of [d1, d2]) {
      assert.equal(readFileSync(join(d, "privkey.pem"), "utf8"), ctx.files.privkeyPem);
      assert.equal(readFileSync(join(d, "cert.pem"), "utf8"), ctx.files.certPem);
      assert.equal(readFileSync(join(d, "chain.pem"), "utf8"), ctx.files.chainPem);
      assert.equal(readFileSync(join(d, "fullchain.pem"), "utf8"), ctx.files.fullchainPem);
      // Full chain then key (these PEMs have no blank lines or CRs for pem-bundle to drop).
      assert.equal(readFileSync(join(d, "both.pem"), "utf8"), fullchainThenKey(ctx.files));
      assert.equal(fullchainThenKey(ctx.files), ctx.files.fullchainPem + ctx.files.privkeyPem);
      const mode = (f: string) => statSync(join(d, f)).mode & 0o777;
      assert.equal(mode("privkey.pem"), 0o600, "the key is 0600 even where the old one was 0644");
      assert.equal(mode("both.pem"), 0o600);
      assert.equal(mode("cert.pem"), 0o644);
      assert.equal(mode("fullchain.pem"), 0o644);
      assert.deepEqual(
        readdirSync(d).filter((f) => f.startsWith(".wile-")),
        [],
        "no temp files are left",
      );
      assert.equal(
        readFileSync(join(d, "reloaded"), "utf8"),
        `s.example|s.example www.s.example|${d}/privkey.pem${d}\n`,
      );
    }

    const c = calls();
    assert.equal(c.length, 8, JSON.stringify(c));
    // ssh-transport.ts's order; IdentitiesOnly=yes goes with -i (since ssh and exchange share it).
    const options = ["-o", "BatchMode=yes", "-i", join(tmp, "id"), "-o", "IdentitiesOnly=yes"];
    const rest = ["-o", "UserKnownHostsFile=/k h", "-o", "ConnectTimeout=20"];
    const [pre, scp, install, reload] = c as [string[], string[], string[], string[]];
    assert.deepEqual(pre.slice(0, -1), ["ssh", ...options, "-p", "2222", ...rest, "--", "u@host1"]);
    assert.match(pre.at(-1) as string, /^sh -c .*if \[ ! -d /s);
    const files = scp.slice(scp.indexOf("--") + 1, -1);
    const tag = /\.wile-([0-9a-f]+)\.cert\.pem$/.exec(files[0] as string)?.[1] as string;
    assert.ok(tag, files[0]);
    assert.ok(!existsSync(dirname(files[0] as string)), "the local temp dir is removed");
    assert.deepEqual(
      files.map((f) => f.replace(/^.*\/\.wile-[0-9a-f]+\./, "")),
      ["cert.pem", "chain.pem", "fullchain.pem", "both.pem", "privkey.pem"],
      "the key goes last",
    );
    assert.deepEqual(scp, ["scp", ...options, "-P", "2222", ...rest, "--", ...files, `u@host1:${d1}/`]);
    assert.deepEqual(install.slice(0, -1), ["ssh", ...options, "-p", "2222", ...rest, "--", "u@host1"]);
    const script = (install.at(-1) as string)
      .replace(/^sh -c '/, "")
      .replace(/'$/, "")
      .replace(/'\\''/g, "'");
    assert.equal(
      script,
      [
        "set -e",
        `cd -- '${d1}'`,
        `trap 'rm -f -- .wile-${tag}.cert.pem .wile-${tag}.chain.pem .wile-${tag}.fullchain.pem .wile-${tag}.both.pem .wile-${tag}.privkey.pem' EXIT`,
        `chmod 644 -- '.wile-${tag}.cert.pem'`,
        `chmod 644 -- '.wile-${tag}.chain.pem'`,
        `chmod 644 -- '.wile-${tag}.fullchain.pem'`,
        `chmod 600 -- '.wile-${tag}.both.pem'`,
        `chmod 600 -- '.wile-${tag}.privkey.pem'`,
        `mv -f -- '.wile-${tag}.cert.pem' 'cert.pem'`,
        `mv -f -- '.wile-${tag}.chain.pem' 'chain.pem'`,
        `mv -f -- '.wile-${tag}.fullchain.pem' 'fullchain.pem'`,
        `mv -f -- '.wile-${tag}.both.pem' 'both.pem'`,
        `mv -f -- '.wile-${tag}.privkey.pem' 'privkey.pem'`,
      ].join("\n"),
    );
    assert.deepEqual(reload.slice(0, -1), ["ssh", ...options, "-p", "2222", ...rest, "--", "u@host1"]);
    assert.match(reload.at(-1) as string, /^sh -c '.*printf/s);
    assert.equal((c[5] as string[]).at(-1), `host2:${d2}/`, "a target without user");
    assert.equal((c[6] as string[])[(c[6] as string[]).length - 2], "host2");
  });

  test("a failing host is named with ssh's message; the other hosts still get the files", async () => {
    writeFileSync(log, "");
    const ok = mkdtempSync(join(tmp, "ok-"));
    process.env.FAKE_SSH_DOWN = "down.example";
    try {
      const t = new SshDeployTarget({
        targets: [`root@down.example:${ok}`, `ok.example:${ok}`],
        options: [],
      });
      await assert.rejects(t.deploy(ctx), (e: Error) => {
        assert.equal(
          e.message,
          `root@down.example:${ok}: logging in and checking the directory failed (exit 255) (ssh could not connect or log in): ssh: connect to host down.example port 22: Connection refused`,
        );
        return true;
      });
      assert.equal(readFileSync(join(ok, "privkey.pem"), "utf8"), ctx.files.privkeyPem);
      const c = calls().map((a) => `${a[0]} ${a[a.indexOf("--") + 1]}`);
      // The login to down fails; ok.example gets the check, scp and install.
      assert.equal(c.length, 4, c.join("\n"));
    } finally {
      delete process.env.FAKE_SSH_DOWN;
    }
  });

  test("a failing reload or a missing directory fails with the remote output", async () => {
    const d = mkdtempSync(join(tmp, "rl-"));
    const t = new SshDeployTarget({
      targets: [`h:${d}`],
      options: [],
      reload: "echo cannot reload >&2; exit 3",
    });
    await assert.rejects(
      t.deploy(ctx),
      new RegExp(
        `h:${d}: the reload command echo cannot reload >&2; exit 3 failed \\(exit 3\\): cannot reload$`,
      ),
    );
    const missing = new SshDeployTarget({ targets: [`h:${d}/nope`], options: [] });
    await assert.rejects(
      missing.deploy(ctx),
      /nope: logging in and checking the directory failed \(exit 3\): .*\/nope does not exist \(create it first\)$/,
    );
  });

  test("check: ssh and scp in PATH, identity readable", async () => {
    const t = new SshDeployTarget({
      targets: ["h:/d"],
      options: [],
      identity: join(tmp, "missing-id"),
    });
    await assert.rejects(t.check(ctx), /cannot read the identity file .*missing-id: ENOENT/);
    process.env.PATH = join(tmp, "empty");
    try {
      await assert.rejects(
        new SshDeployTarget({ targets: ["h:/d"], options: [] }).check(ctx),
        /ssh: ssh was not found \(looked in PATH and /,
      );
    } finally {
      process.env.PATH = `${bin}:${savedPath}`;
    }
  });
});
