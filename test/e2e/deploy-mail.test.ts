/**
 * End to end: `--deploy dovecot --deploy postfix` against a real Dovecot (imapd, IMAPS and IMAP
 * STARTTLS) and a real Postfix (smtpd with STARTTLS, smtpd_tls_chain_files), each with its own
 * configuration in a temp dir, on 127.0.0.1 and free ports. wile finds the certificate paths with
 * doveconf -c / postconf -c, reloads with doveadm -c / postfix -c, and verifies; the test checks what
 * each service serves with openssl s_client on its own.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serialHex, servedSerial } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { certFiles, issueArgs } from "../helpers/e2e";
import {
  type Dovecot,
  mailServicesUnavailable,
  type Postfix,
  startDovecot,
  startPostfix,
} from "../helpers/mail-services";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

const skip = skipUnlessAvailable(mailServicesUnavailable());

let env: TestEnv;
let dovecot: Dovecot;
let postfix: Postfix;
let home: string;

const name = "mail.example";

describe("deploy to real Dovecot and Postfix", { skip }, () => {
  before(async () => {
    [dovecot, postfix] = await Promise.all([startDovecot(), startPostfix()]);
    env = await startTestEnv();
    home = join(tempDir("wile-e2e-mail-"), "wile");
  });

  after(async () => {
    await Promise.all([dovecot?.stop(), postfix?.stop(), env?.stop()]);
  });

  const wile = (args: string[], extraEnv: Record<string, string> = {}) =>
    runWile(args, { home, timeoutMs: 120_000, env: extraEnv });
  const deployArgs = (dovecotExtra: string[] = []) => [
    "--deploy",
    "dovecot",
    "--dovecot-config",
    dovecot.config,
    "--dovecot-verify",
    `127.0.0.1:${dovecot.imapsPort}`,
    ...dovecotExtra,
    "--deploy",
    "postfix",
    "--postfix-config",
    postfix.configDir,
    "--postfix-verify",
    `127.0.0.1:${postfix.smtpPort}:smtp`,
  ];
  /** What each listener serves, read with openssl s_client. */
  const served = () => ({
    imaps: servedSerial(dovecot.imapsPort, name),
    imap: servedSerial(dovecot.imapPort, name, "imap"),
    smtp: servedSerial(postfix.smtpPort, name, "smtp"),
  });
  const all = (serial: string) => ({ imaps: serial, imap: serial, smtp: serial });

  it("issue --deploy dovecot --deploy postfix: both serve the new certificate", async () => {
    const placeholders = served();
    assert.notEqual(placeholders.imaps, "");
    const r = await wile(issueArgs(env, [name], deployArgs()));
    assert.equal(r.code, 0, dump(r));
    const f = certFiles(home, name);
    const serial = serialHex(f.cert);
    assert.deepEqual(
      served(),
      all(serial),
      "openssl s_client sees the new serial on IMAPS, IMAP STARTTLS and SMTP STARTTLS",
    );
    assert.match(
      r.stderr,
      new RegExp(`dovecot on 127\\.0\\.0\\.1:\\d+ serves the new certificate \\(serial ${serial}\\)`),
    );
    assert.match(
      r.stderr,
      new RegExp(`postfix on 127\\.0\\.0\\.1:\\d+ serves the new certificate \\(serial ${serial}\\)`),
    );

    // Where doveconf and postconf said, in the forms the services read.
    assert.equal(readFileSync(dovecot.certFile, "utf8"), readFileSync(f.fullchain, "utf8"));
    assert.equal(readFileSync(dovecot.keyFile, "utf8"), readFileSync(f.privkey, "utf8"));
    assert.equal(statSync(dovecot.keyFile).mode & 0o777, 0o600, "the key file keeps its mode");
    assert.equal(
      readFileSync(postfix.chainFile, "utf8"),
      readFileSync(f.privkey, "utf8") + readFileSync(f.fullchain, "utf8"),
      "smtpd_tls_chain_files: key, then certificate and chain",
    );
    assert.equal(statSync(postfix.chainFile).mode & 0o777, 0o600);

    const renewal = JSON.parse(readFileSync(f.renewal, "utf8"));
    assert.deepEqual(renewal.deploy, [
      { kind: "dovecot", config: dovecot.config, verify: `127.0.0.1:${dovecot.imapsPort}:tls` },
      { kind: "postfix", config: postfix.configDir, verify: `127.0.0.1:${postfix.smtpPort}:smtp` },
    ]);
  });

  it("renew --force replays both targets: both serve the newer certificate", async () => {
    const f = certFiles(home, name);
    const before = serialHex(f.cert);
    const r = await wile(["renew", name, "--force"]);
    assert.equal(r.code, 0, dump(r));
    const after = serialHex(f.cert);
    assert.notEqual(after, before);
    assert.deepEqual(served(), all(after));
  });

  it("wile deploy NAME re-runs the stored targets", async () => {
    const r = await wile(["deploy", name]);
    assert.equal(r.code, 0, dump(r));
    assert.match(r.stderr, /deployed to 2 targets/);
  });

  it("a reload that does nothing: verify fails with the served serial, exit 1, the new certificate stays", async () => {
    const f = certFiles(home, name);
    // Store the do-nothing reload (this deploy itself passes: Dovecot already serves the current one).
    const set = await wile(["deploy", name, ...deployArgs(["--dovecot-reload", "true"])]);
    assert.equal(set.code, 0, dump(set));
    const old = serialHex(f.cert);
    // Dovecot will never switch: its verify need not wait the default 10 s (Postfix, whose reload
    // is real, still gets a retry).
    const r = await wile(["renew", name, "--force"], { WILE_VERIFY_WAIT_MS: "1000" });
    assert.equal(r.code, 1, dump(r));
    assert.ok(r.ms < 10_000, `WILE_VERIFY_WAIT_MS reached the verify: took ${r.ms} ms`);
    if (process.env.WILE_SHOW_OUTPUT) console.log(r.stderr);
    const fresh = serialHex(f.cert);
    assert.notEqual(fresh, old, "the renewed certificate is stored");
    assert.match(
      r.stderr,
      new RegExp(
        `dovecot on 127\\.0\\.0\\.1:${dovecot.imapsPort} still serves serial ${old} \\(expires \\d{4}-\\d\\d-\\d\\d\\) after reload; does ssl_cert point at ${dovecot.certFile.replace(/[.]/g, "\\.")}\\?`,
      ),
    );
    // Dovecot was never told: it serves the old one, though its file holds the new one.
    assert.equal(served().imaps, old);
    assert.equal(readFileSync(dovecot.certFile, "utf8"), readFileSync(f.fullchain, "utf8"));
    // Postfix, the other target, was still deployed.
    assert.equal(served().smtp, fresh);
    // wile deploy with a real reload puts it right.
    const fix = await wile(["deploy", name, ...deployArgs()]);
    assert.equal(fix.code, 0, dump(fix));
    assert.deepEqual(served(), all(fresh));
  });
});
