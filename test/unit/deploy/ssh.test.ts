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
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseOptions } from "../../../src/cli/options";
import { parseCertificate } from "../../../src/crypto/x509";
import { combinedPem } from "../../../src/deploy/haproxy";
import { targetKind } from "../../../src/deploy/registry";
import { parseSshTarget, type SshConfig, SshDeployTarget, sshKind } from "../../../src/deploy/ssh";
import type { DeployContext } from "../../../src/deploy/target";
import { UsageError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
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

const opts = (argv: string[]) => parseOptions(argv, sshKind.options);

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

  test("every option, identity made absolute", () => {
    const c = sshKind.fromOptions(
      opts([
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
      ]),
    );
    assert.deepEqual(c, {
      kind: "ssh",
      targets: ["deploy@web1.example:/etc/ssl/wile", "web2:certs"],
      port: 2222,
      identity: join(process.cwd(), "keys/id_ed25519"),
      options: ["UserKnownHostsFile=/etc/wile/known_hosts", "ConnectTimeout=5"],
      combined: "haproxy.pem",
      reload: "sudo systemctl reload nginx",
    });
    assert.deepEqual(sshKind.fromOptions(opts(["--ssh-target", "h:/d"])), {
      kind: "ssh",
      targets: ["h:/d"],
      options: [],
    });
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

  test("bad input is a usage error", () => {
    const bad: Array<[string[], RegExp]> = [
      [[], /at least one --ssh-target/],
      [["--ssh-target", "host.example"], /is not \[USER@\]HOST:DIR/],
      [["--ssh-target", "host.example:"], /no DIR/],
      [["--ssh-target=-oProxyCommand=x:/d"], /not a host name/],
      [["--ssh-target", "h:/a b"], /remote directory/],
      [["--ssh-target", "h:~/x"], /no ~/],
      [["--ssh-target", "h:-x"], /not start with -/],
      [["--ssh-target", "u;x@h:/d"], /not a user name/],
      [["--ssh-target", "h:/d", "--ssh-target", "h:/d"], /twice/],
      [["--ssh-target", "h:/d", "--ssh-port", "99999"], /not a port/],
      [["--ssh-target", "h:/d", "--ssh-option=-oX=y"], /not NAME=VALUE/],
      [["--ssh-target", "h:/d", "--ssh-option", "Novalue"], /not NAME=VALUE/],
      [["--ssh-target", "h:/d", "--ssh-combined", "../x.pem"], /plain file name/],
      [["--ssh-target", "h:/d", "--ssh-combined", "privkey.pem"], /would overwrite/],
    ];
    for (const [argv, re] of bad) {
      assert.throws(
        () => sshKind.fromOptions(opts(argv)),
        (e: unknown) => e instanceof UsageError && re.test(e.message),
        argv.join(" "),
      );
    }
  });

  test("renewal.json round trip, and broken entries", () => {
    const configs = [
      sshKind.fromOptions(
        opts([
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
      ),
      sshKind.fromOptions(opts(["--ssh-target", "h:d"])),
    ];
    assert.deepEqual(deployRoundTrip(sshKind, configs), configs);
    assert.throws(
      () => sshKind.parse({ kind: "ssh", targets: [] }, "w: deploy[0]"),
      /w: deploy\[0\]: ssh "targets" is empty/,
    );
    assert.throws(() => sshKind.parse({ kind: "ssh", targets: ["h"] }, "w"), /"targets"/);
    assert.throws(() => sshKind.parse({ kind: "ssh", targets: ["h:/d"], port: "22" }, "w"), /"port"/);
    assert.throws(() => sshKind.parse({ kind: "ssh", targets: ["h:/d"], identity: "k" }, "w"), /"identity"/);
  });
});

describe("ssh deploy with stand-in ssh and scp", () => {
  test("the exact command lines, the files with their modes, the reload with its environment", async () => {
    writeFileSync(log, "");
    const d1 = mkdtempSync(join(tmp, "r1-"));
    const d2 = mkdtempSync(join(tmp, "r2-"));
    writeFileSync(join(d1, "privkey.pem"), "old key", { mode: 0o644 });
    const config: SshConfig = {
      kind: "ssh",
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
      assert.equal(
        readFileSync(join(d, "both.pem"), "utf8"),
        combinedPem(ctx.files.fullchainPem, ctx.files.privkeyPem),
      );
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
    const common = [
      "-o",
      "BatchMode=yes",
      "-o",
      "UserKnownHostsFile=/k h",
      "-o",
      "ConnectTimeout=20",
      "-i",
      join(tmp, "id"),
    ];
    const [pre, scp, install, reload] = c as [string[], string[], string[], string[]];
    assert.deepEqual(pre.slice(0, -1), ["ssh", ...common, "-p", "2222", "--", "u@host1"]);
    assert.match(pre.at(-1) as string, /^sh -c .*if \[ ! -d /s);
    const files = scp.slice(scp.indexOf("--") + 1, -1);
    const tag = /\.wile-([0-9a-f]+)\.cert\.pem$/.exec(files[0] as string)?.[1] as string;
    assert.ok(tag, files[0]);
    assert.deepEqual(
      files.map((f) => f.replace(/^.*\/\.wile-[0-9a-f]+\./, "")),
      ["cert.pem", "chain.pem", "fullchain.pem", "both.pem", "privkey.pem"],
      "the key goes last",
    );
    assert.deepEqual(scp, ["scp", ...common, "-P", "2222", "--", ...files, `u@host1:${d1}/`]);
    assert.deepEqual(install.slice(0, -1), ["ssh", ...common, "-p", "2222", "--", "u@host1"]);
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
    assert.deepEqual(reload.slice(0, -1), ["ssh", ...common, "-p", "2222", "--", "u@host1"]);
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
        kind: "ssh",
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
      kind: "ssh",
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
    const missing = new SshDeployTarget({ kind: "ssh", targets: [`h:${d}/nope`], options: [] });
    await assert.rejects(
      missing.deploy(ctx),
      /nope: logging in and checking the directory failed \(exit 3\): .*\/nope does not exist \(create it first\)$/,
    );
  });

  test("check: ssh and scp in PATH, identity readable", async () => {
    const t = new SshDeployTarget({
      kind: "ssh",
      targets: ["h:/d"],
      options: [],
      identity: join(tmp, "missing-id"),
    });
    await assert.rejects(t.check(ctx), /cannot read the identity file .*missing-id: ENOENT/);
    process.env.PATH = join(tmp, "empty");
    try {
      await assert.rejects(
        new SshDeployTarget({ kind: "ssh", targets: ["h:/d"], options: [] }).check(ctx),
        /ssh: ssh not found in PATH/,
      );
    } finally {
      process.env.PATH = `${bin}:${savedPath}`;
    }
  });
});
