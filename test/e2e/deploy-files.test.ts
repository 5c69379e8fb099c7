/**
 * End to end: `wile issue --deploy files --deploy command` against Pebble, then `wile deploy NAME`
 * with other settings: owners and modes, the combined PEM, and every variable a command gets.
 */
import assert from "node:assert/strict";
import { chmodSync, chownSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { keyMatchesCert, serialHex } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { certFiles, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

let env: TestEnv;
let home: string;
let out: string;

before(async () => {
  env = await startTestEnv();
  home = join(tempDir("wile-e2e-deploy-files-"), "wile");
  out = tempDir("wile-e2e-files-out-");
});

after(async () => {
  await env?.stop();
});

const wile = (args: string[]) => runWile(args, { home, timeoutMs: 120_000 });
const mode = (p: string) => statSync(p).mode & 0o7777;
const isRoot = process.getuid?.() === 0;

describe("deploy files and command", () => {
  const name = "files-deploy.example";

  it("issue: every file, combined = key + fullchain, new key 0600, an existing file keeps owner and mode; command gets every variable", async () => {
    // An existing fullchain owned by someone else with an unusual mode.
    const existing = join(out, "fullchain.pem");
    writeFileSync(existing, "old\n");
    chmodSync(existing, 0o604);
    if (isRoot) chownSync(existing, 65534, 65534);
    const envFile = join(out, "env.txt");
    const r = await wile(
      issueArgs(
        env,
        [name, `www.${name}`],
        [
          ...["--deploy", "files", "--cert-file", join(out, "cert.pem"), "--key-file", join(out, "key.pem")],
          ...[
            "--ca-file",
            join(out, "chain.pem"),
            "--fullchain-file",
            existing,
            "--combined-file",
            join(out, "combined.pem"),
          ],
          ...["--reload-cmd", `touch ${join(out, "reloaded")}`],
          ...["--deploy", "command", "--deploy-cmd", `env > ${envFile}`],
        ],
      ),
    );
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, name);
    const text = (p: string) => readFileSync(p, "utf8");
    assert.equal(text(join(out, "cert.pem")), text(f.cert));
    assert.equal(text(join(out, "key.pem")), text(f.privkey));
    assert.equal(text(join(out, "chain.pem")), text(f.chain));
    assert.equal(text(existing), text(f.fullchain));
    const combined = text(join(out, "combined.pem"));
    assert.equal(combined, text(f.privkey) + text(f.fullchain));
    assert.equal(mode(join(out, "key.pem")), 0o600);
    assert.equal(mode(join(out, "combined.pem")), 0o600);
    assert.equal(mode(join(out, "cert.pem")), 0o644);
    assert.equal(mode(existing), 0o604, "existing file keeps its mode");
    if (isRoot) assert.equal(statSync(existing).uid, 65534, "existing file keeps its owner");
    assert.ok(keyMatchesCert(join(out, "key.pem"), join(out, "cert.pem")).match);
    assert.ok(statSync(join(out, "reloaded")).isFile(), "reload command ran");

    const vars = Object.fromEntries(
      text(envFile)
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const domains = `${name} www.${name}`;
    const want: Record<string, string> = {
      WILE_CERT_NAME: name,
      WILE_DOMAINS: domains,
      WILE_CERT_PATH: f.cert,
      WILE_KEY_PATH: f.privkey,
      WILE_CHAIN_PATH: f.chain,
      WILE_FULLCHAIN_PATH: f.fullchain,
      RENEWED_LINEAGE: f.dir,
      RENEWED_DOMAINS: domains,
      CERT_PATH: f.cert,
      CERT_KEY_PATH: f.privkey,
      CA_CERT_PATH: f.chain,
      CERT_FULLCHAIN_PATH: f.fullchain,
    };
    for (const [k, v] of Object.entries(want)) assert.equal(vars[k], v, k);
    // The paths the variables name hold the certificate just issued.
    assert.equal(serialHex(vars.CERT_PATH as string), serialHex(f.cert));

    const renewal = JSON.parse(text(f.renewal));
    assert.deepEqual(
      renewal.deploy.map((d: { kind: string }) => d.kind),
      ["files", "command"],
    );
  });

  it("wile deploy NAME --deploy files with a group: a new key gets 0640 and the group", {
    skip: skipUnlessAvailable(!isRoot && "needs root for chown"),
  }, async () => {
    const key = join(out, "group.key");
    const r = await wile(["deploy", name, "--deploy", "files", "--key-file", key, "--owner", "root:daemon"]);
    assert.equal(r.code, 0, dump(r));
    assert.equal(mode(key), 0o640);
    assert.equal(statSync(key).gid, 1);
    assert.equal(statSync(key).uid, 0);
  });

  it("a failing command exits 1; the certificate stays", async () => {
    const r = await wile([
      "deploy",
      name,
      "--deploy",
      "command",
      "--deploy-cmd",
      "echo hook broke >&2; exit 5",
    ]);
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /exit 5/);
    assert.match(r.stderr, /hook broke/);
    assert.match(readFileSync(certFiles(home, name).cert, "utf8"), /BEGIN CERTIFICATE/);
  });
});
