/**
 * End to end: `--deploy ssh` against a real OpenSSH server on 127.0.0.1 (test/helpers/sshd.ts):
 * the files arrive with the right content and modes, the remote reload runs, and the host key is
 * checked against known_hosts (an unknown host fails with ssh's own message); a SIGTERM during
 * the deploy removes the local temp dir holding the key and stops the running ssh.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { certFiles, issueArgs } from "../helpers/e2e";
import { leftRunning } from "../helpers/processes";
import { type Sshd, startSshd } from "../helpers/sshd";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let sshd: Sshd;
let home: string;
let dirA: string;
let dirB: string;

before(async () => {
  sshd = await startSshd();
  env = await startTestEnv();
  home = join(tempDir("wile-e2e-ssh-"), "wile");
  const base = `${sshd.userHome}/wile-e2e-${process.pid}`;
  dirA = `${base}/a`;
  dirB = `${base}/b`;
  const r = sshd.exec(`rm -rf ${base} && mkdir -p ${dirA} ${dirB}`);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  sshd?.exec(`rm -rf ${sshd.userHome}/wile-e2e-${process.pid}`);
  await sshd?.stop();
  await env?.stop();
});

const wile = (args: string[]) => runWile(args, { home, timeoutMs: 90_000 });
const sshOpts = (
  knownHosts: string,
  dirs: string[],
  reload = 'touch reloaded && echo "$WILE_CERT_NAME $WILE_FULLCHAIN_PATH" > reload.env',
) => [
  "--deploy",
  "ssh",
  ...dirs.flatMap((d) => ["--ssh-target", sshd.target(d)]),
  "--ssh-port",
  String(sshd.port),
  "--ssh-identity",
  sshd.identityFile,
  "--ssh-option",
  `UserKnownHostsFile=${knownHosts}`,
  "--ssh-option",
  "GlobalKnownHostsFile=/dev/null",
  "--ssh-reload",
  reload,
];
/** `stat -c '%a %U' file` and the content, read over ssh as the test user. */
const remote = (file: string) => {
  const st = sshd.exec(`stat -c '%a %U' ${file}`);
  assert.equal(st.code, 0, `${file}: ${st.stderr}`);
  const cat = sshd.exec(`cat ${file}`);
  return { mode: st.stdout.trim(), content: cat.stdout };
};

describe("deploy over ssh to a real OpenSSH server", () => {
  const name = "ssh.example";

  it("issue --deploy ssh: the files arrive in every DIR with their modes, the reload runs", async () => {
    const r = await wile(issueArgs(env, [name], sshOpts(sshd.knownHostsFile, [dirA, dirB])));
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, name);
    for (const dir of [dirA, dirB]) {
      const key = remote(`${dir}/privkey.pem`);
      assert.equal(key.mode, `600 ${sshd.user}`);
      assert.equal(key.content, readFileSync(f.privkey, "utf8"));
      for (const [file, local] of [
        ["cert.pem", f.cert],
        ["chain.pem", f.chain],
        ["fullchain.pem", f.fullchain],
      ] as const) {
        const got = remote(`${dir}/${file}`);
        assert.equal(got.mode, `644 ${sshd.user}`, file);
        assert.equal(got.content, readFileSync(local, "utf8"), file);
      }
      assert.equal(remote(`${dir}/reloaded`).content, "");
      assert.equal(remote(`${dir}/reload.env`).content, `${name} ${dir}/fullchain.pem\n`);
      const left = sshd
        .exec(`ls -A ${dir}`)
        .stdout.split("\n")
        .filter((l) => l.startsWith(".wile-"));
      assert.deepEqual(left, [], "no temp files left");
    }
    const renewal = JSON.parse(readFileSync(f.renewal, "utf8"));
    assert.equal(renewal.deploy[0].kind, "ssh");
    assert.deepEqual(renewal.deploy[0].targets, [sshd.target(dirA), sshd.target(dirB)]);
  });

  it("renew --force replays it: the new certificate arrives", async () => {
    const r = await wile(["renew", name, "--force"]);
    assert.equal(r.code, 0, dump(r));
    assert.equal(remote(`${dirA}/cert.pem`).content, readFileSync(certFiles(home, name).cert, "utf8"));
    assert.equal(remote(`${dirB}/privkey.pem`).content, readFileSync(certFiles(home, name).privkey, "utf8"));
  });

  it("an unknown host key fails with ssh's message (known_hosts respected); the certificate stays", async () => {
    const empty = join(tempDir("wile-e2e-ssh-kh-"), "known_hosts");
    writeFileSync(empty, "");
    const other = "ssh-unknown.example";
    const r = await wile(issueArgs(env, [other], sshOpts(empty, [dirA])));
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /Host key verification failed/);
    assert.match(r.stderr, new RegExp(`${sshd.user}@127\\.0\\.0\\.1:${dirA}`));
    assert.ok(readFileSync(certFiles(home, other).cert, "utf8").includes("BEGIN CERTIFICATE"));
    assert.equal(
      remote(`${dirA}/cert.pem`).content,
      readFileSync(certFiles(home, name).cert, "utf8"),
      "the host still has the files of the earlier deploy",
    );
    assert.equal(readFileSync(empty, "utf8"), "", "ssh did not add the unknown key");
  });

  it("a missing remote directory fails naming the host and the directory", async () => {
    const r = await wile([
      "deploy",
      name,
      ...sshOpts(sshd.knownHostsFile, [`${sshd.userHome}/wile-e2e-${process.pid}/missing`]),
    ]);
    assert.equal(r.code, 1, dump(r));
    assert.match(
      r.stderr,
      /missing: logging in and checking the directory failed \(exit 3\): \S+\/missing does not exist/,
    );
  });

  it("SIGTERM while ssh runs: the local temp dir holding the key is removed, ssh stopped, exit 143 (bug 5)", async () => {
    const tmp = tempDir("wile-e2e-ssh-tmpdir-");
    // The remote reload waits while this file exists; its path also marks the local ssh's argv.
    const hold = `${dirA}/hold-${process.pid}`;
    assert.equal(sshd.exec(`touch ${hold}`).code, 0);
    let during: string[] = [];
    try {
      const r = await runWile(
        ["deploy", name, ...sshOpts(sshd.knownHostsFile, [dirA], `while [ -e ${hold} ]; do sleep 0.2; done`)],
        {
          home,
          timeoutMs: 90_000,
          env: { TMPDIR: tmp },
          interrupt: {
            when: /ssh: running while /,
            signal: "SIGTERM",
            afterMs: 500,
            before: () => {
              during = readdirSync(tmp);
            },
          },
        },
      );
      assert.ok(r.interrupted, dump(r));
      assert.equal(r.code, 143, dump(r));
      assert.match(r.stderr, /interrupted \(SIGTERM\): cleaning up/);
      assert.equal(during.filter((n) => n.startsWith("wile-ssh-")).length, 1, `in TMPDIR then: ${during}`);
      assert.deepEqual(readdirSync(tmp), [], "the temp dir with the key copy is gone");
      assert.deepEqual(await leftRunning("ssh", hold), [], "no ssh left running");
    } finally {
      sshd.exec(`rm -f ${hold}`);
    }
  });
});
