/**
 * End to end (issue 10 finding 1): a certificate the CA sends is checked before it is installed.
 * wile talks to Pebble through test/helpers/ari-proxy.ts, whose replaceCertificate hook answers
 * every certificate download with a forged chain made here with openssl: garbage, a leaf for
 * another key, a leaf without the names, Pebble's leaf with an unrelated CA certificate as its
 * issuer, an expired leaf. Each against `issue --force`, `renew --force` and `cron` (the ARI
 * window says due): exit 1, a message naming the CA and the problem, the certificate and key at
 * the stable paths and the deployed files byte-identical, no new version. (The general hostile-CA
 * proxy of issue 10 part 1 is test/helpers/hostile-ca.ts, written in parallel; this one only
 * needs the one hook.)
 *
 * Also issue 10 finding 3: a certificate directory wile cannot write to is found before anything
 * is ordered, not after the CA issued.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AriProxy, startAriProxy } from "../helpers/ari-proxy";
import { pemBlocks, serialHex } from "../helpers/certs";
import { certFiles, hasStackTrace, issueArgs, snapshot } from "../helpers/e2e";
import { giveToNobody, isRoot, otherUserBin } from "../helpers/other-user";
import { makeCa, otherKeyCsr, signLeaf, type TestCa } from "../helpers/test-ca";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

const DAY = 86_400_000;

let env: TestEnv;
let proxy: AriProxy;
let dir: string;
let forger: TestCa;
let stranger: TestCa;

before(async () => {
  // A second root: orders link an alternate chain, for --preferred-chain.
  env = await startTestEnv({ alternateRoots: 1 });
  proxy = await startAriProxy(env);
  // Every certificate is due by ARI, so `wile cron` renews it.
  proxy.setWindow("*", { start: new Date(Date.now() - 2 * DAY), end: new Date(Date.now() - DAY) });
  dir = tempDir("wile-e2e-cert-check-");
  forger = makeCa(dir, "Forged Test CA");
  stranger = makeCa(dir, "Unrelated Root CA");
});

after(async () => {
  await proxy?.stop();
  await env?.stop();
});

const via = (): TestEnv => ({ ...env, directoryUrl: proxy.directoryUrl, caBundle: proxy.caBundle });

/** The CSR (PEM) wile sent in the finalize whose key the served leaf carries. */
function csrFor(servedLeaf: string): string {
  const want = new X509Certificate(servedLeaf).publicKey.export({ type: "spki", format: "pem" });
  for (const r of [...proxy.requests].reverse()) {
    const p = r.payload as { csr?: unknown } | undefined;
    if (typeof p?.csr !== "string") continue;
    const der = Buffer.from(p.csr, "base64url");
    const b64 = der.toString("base64").match(/.{1,64}/g) ?? [];
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${b64.join("\n")}\n-----END CERTIFICATE REQUEST-----\n`;
    const pub = execFileSync("openssl", ["req", "-noout", "-pubkey"], { input: pem, encoding: "utf8" });
    if (pub.trim() === String(want).trim()) return pem;
  }
  throw new Error("cert-check: no finalize CSR matches the served leaf's key");
}

/** subjectAltName entries of a leaf as openssl ca takes them ("DNS:a.example"). */
function sansOf(leaf: string): string[] {
  return (new X509Certificate(leaf).subjectAltName ?? "")
    .split(", ")
    .map((s) => s.replace("IP Address:", "IP:"));
}

interface Mode {
  what: string;
  forge: (served: string) => string;
  /** What the message must say besides naming the CA. */
  says: RegExp;
  /** Refused when downloaded (the CA is named by the certificate URL), before the chain check. */
  atDownload?: boolean;
}

const modes: Mode[] = [
  {
    what: "an HTML error page instead of a chain",
    forge: () => "<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    says: /with something that is not a PEM certificate chain: <html>/,
    atDownload: true,
  },
  {
    what: "garbage in a CERTIFICATE block",
    forge: () =>
      `-----BEGIN CERTIFICATE-----\n${Buffer.from("garbage, not DER ".repeat(8)).toString("base64")}\n-----END CERTIFICATE-----\n`,
    says: /the leaf certificate is not a valid X\.509 certificate/,
  },
  {
    what: "a chain for another key",
    forge: (served) => {
      const leaf = pemBlocks(served)[0] as string;
      return signLeaf(forger, otherKeyCsr(dir).csrPem, { sans: sansOf(leaf) }) + forger.pem;
    },
    says: /a certificate for another key than the one in wile's request/,
  },
  {
    what: "a leaf without the names",
    forge: (served) => {
      const leaf = pemBlocks(served)[0] as string;
      return signLeaf(forger, csrFor(leaf), { sans: ["DNS:someone-else.example"] }) + forger.pem;
    },
    says: /a certificate without [a-z-]+\.certcheck\.example \(it names someone-else\.example\)/,
  },
  {
    what: "an unrelated CA certificate as the leaf's issuer",
    forge: (served) => `${pemBlocks(served)[0]}\n${stranger.pem}`,
    says: /a chain that does not link: the leaf "[a-z-]+\.certcheck\.example" was not issued by the next certificate in the chain, "Unrelated Root CA"/,
  },
  {
    what: "an expired leaf",
    forge: (served) => {
      const leaf = pemBlocks(served)[0] as string;
      const start = new Date(Date.now() - 90 * DAY);
      return (
        signLeaf(forger, csrFor(leaf), { sans: sansOf(leaf), start, end: new Date(Date.now() - DAY) }) +
        forger.pem
      );
    },
    says: /a certificate that expired on 20\d\d-/,
  },
];

interface Site {
  command: "issue" | "renew" | "cron";
  name: string;
  home: string;
  out: string;
  issueArgs: string[];
}

const sites: Site[] = [];

/** The bytes of every deployed file, and the number of installed versions. */
function state(site: Site) {
  const deployed: Record<string, string> = {};
  for (const f of readdirSync(site.out)) deployed[f] = readFileSync(join(site.out, f), "utf8");
  const versions = readdirSync(join(certFiles(site.home, site.name).dir, "archive")).length;
  return { stable: snapshot(site.home, site.name), deployed, versions };
}

const argsFor = (site: Site) =>
  site.command === "issue"
    ? [...site.issueArgs, "--force"]
    : site.command === "renew"
      ? ["renew", site.name, "--force"]
      : ["cron"];

describe("a certificate from the CA is checked before it is installed (issue 10 finding 1)", () => {
  before(async () => {
    await Promise.all(
      (["issue", "renew", "cron"] as const).map(async (command) => {
        const name = `${command}.certcheck.example`;
        const out = tempDir("wile-e2e-cert-check-out-");
        const home = join(tempDir("wile-e2e-cert-check-home-"), "wile");
        const args = issueArgs(
          via(),
          [name],
          [
            ...[
              "--deploy",
              "files",
              "--cert-file",
              join(out, "cert.pem"),
              "--key-file",
              join(out, "key.pem"),
            ],
            ...["--fullchain-file", join(out, "fullchain.pem")],
          ],
        );
        const r = await runWile(args, { home });
        assert.equal(r.code, 0, dump(r));
        sites.push({ command, name, home, out, issueArgs: args });
      }),
    );
  });

  let runs = 0;
  let refused = 0;
  for (const mode of modes) {
    it(`${mode.what}: issue --force, renew --force and cron exit 1, naming the CA; nothing changes`, async () => {
      proxy.replaceCertificate(mode.forge);
      // Settled, not Promise.all: every run ends before the hook is removed, even when one fails.
      const results = await Promise.allSettled(
        sites.map(async (site) => {
          // Each run starts from the same state: no backoff from the previous mode's failure.
          rmSync(join(certFiles(site.home, site.name).dir, "state.json"), { force: true });
          const before = state(site);
          const r = await runWile(argsFor(site), { home: site.home });
          runs++;
          const what = `${site.command} / ${mode.what}\n${dump(r)}`;
          // One line per run, for the per-case table of the closing note.
          console.log(
            `cert-check: ${mode.what} | ${site.command} | exit ${r.code} | ${r.stderr.split("\n").find((l) => /error/i.test(l)) ?? ""}`,
          );
          assert.equal(r.code, 1, what);
          const named = mode.atDownload
            ? `the CA answered ${proxy.origin}/`
            : `the CA at ${proxy.directoryUrl} sent `;
          assert.ok(r.stderr.includes(named), `names the CA: ${what}`);
          assert.match(r.stderr, mode.says, what);
          if (!mode.atDownload) {
            assert.match(r.stderr, /it was not installed, and the current certificate stays in place/, what);
          }
          assert.ok(!hasStackTrace(r.stderr) && !/internal error/i.test(r.stderr), what);
          assert.deepEqual(
            state(site),
            before,
            `the stable files, deployed files and versions changed: ${what}`,
          );
          refused++;
        }),
      );
      proxy.replaceCertificate(null);
      for (const r of results) if (r.status === "rejected") throw r.reason;
    });
  }

  it("--preferred-chain: the alternate chain it picks is checked too (an expired leaf there is refused)", async () => {
    const altRoot = new X509Certificate(await env.pebbleRoot(1)).subject.match(/CN=(.+)/)?.[1] ?? "";
    assert.match(altRoot, /Pebble Root CA/);
    const name = "preferred.certcheck.example";
    const home = join(tempDir("wile-e2e-cert-check-home-"), "wile");
    const issued = await runWile(issueArgs(via(), [name], ["--preferred-chain", altRoot]), { home });
    assert.equal(issued.code, 0, dump(issued));
    const top = pemBlocks(readFileSync(certFiles(home, name).chain, "utf8")).pop() as string;
    assert.ok(new X509Certificate(top).issuer.includes(altRoot), "the alternate chain was installed");
    const before = snapshot(home, name);
    // Only chains to the alternate root are forged: their leaf is replaced by an expired one,
    // the rest kept, so wile still picks that chain by its top issuer.
    proxy.replaceCertificate((served) => {
      const blocks = pemBlocks(served);
      const last = new X509Certificate(blocks[blocks.length - 1] as string);
      if (!last.issuer.includes(altRoot)) return served;
      const leaf = blocks[0] as string;
      const end = new Date(Date.now() - DAY);
      const expired = signLeaf(forger, csrFor(leaf), {
        sans: sansOf(leaf),
        start: new Date(Date.now() - 9 * DAY),
        end,
      });
      return [expired.trim(), ...blocks.slice(1)].join("\n");
    });
    try {
      const r = await runWile(["renew", name, "--force"], { home });
      assert.equal(r.code, 1, dump(r));
      assert.match(r.stderr, /Using the alternate chain/, dump(r));
      assert.match(r.stderr, /sent a certificate that expired on/, dump(r));
      assert.deepEqual(snapshot(home, name), before);
    } finally {
      proxy.replaceCertificate(null);
    }
  });

  it("with the CA behaving again, each command installs a new certificate", async () => {
    await Promise.all(
      sites.map(async (site) => {
        rmSync(join(certFiles(site.home, site.name).dir, "state.json"), { force: true });
        const serial = serialHex(certFiles(site.home, site.name).cert);
        const r = await runWile(argsFor(site), { home: site.home });
        assert.equal(r.code, 0, dump(r));
        // cron is quiet on success: what it checked is in the log.
        const log = readFileSync(join(site.home, "logs", "wile.log"), "utf8");
        const checked =
          log
            .split("\n")
            .filter((l) => l.includes("Checked the certificate"))
            .pop() ?? "";
        assert.match(
          checked,
          /the leaf ".+" -> ".+", each signed by the next; its top certificate is the one in the current certificate's chain/,
          log,
        );
        assert.notEqual(serialHex(certFiles(site.home, site.name).cert), serial);
        assert.equal(pemBlocks(readFileSync(join(site.out, "fullchain.pem"), "utf8")).length, 2);
      }),
    );
    console.log(
      `reliability: cert-check forged-chains runs=${runs} refused-clean=${refused} other=${runs - refused}`,
    );
  });
});

describe("an unwritable certificate directory is found before anything is ordered (issue 10 finding 3)", () => {
  // Root passes every mode check, so as root wile runs as nobody (setpriv) over a home nobody owns
  // but whose certificate directory and its archive are root's, 0755 (as if a `sudo wile` made
  // them); as any other user the certificate directory is made 0500. Either way wile can read
  // everything there and gets EACCES creating a file.
  const name = "locked.certcheck.example";
  let pub: string;
  let home: string;
  let args: string[];
  let bin: string | undefined;

  before(async () => {
    pub = tempDir("wile-e2e-cert-check-locked-");
    chmodSync(pub, 0o755);
    const caBundle = join(pub, "ca.pem");
    copyFileSync(proxy.caBundle, caBundle);
    chmodSync(caBundle, 0o644);
    const out = join(pub, "out");
    mkdirSync(out, { mode: 0o755 });
    // The challenge directory is writable for nobody, so that the old code got as far as issuing.
    const challenges = join(env.webroot, ".well-known", "acme-challenge");
    mkdirSync(challenges, { recursive: true, mode: 0o755 });
    chmodSync(challenges, 0o1777);
    home = join(pub, "wile");
    args = issueArgs(
      { ...via(), caBundle },
      [name],
      ["--deploy", "files", "--cert-file", join(out, "cert.pem")],
    );
    const r = await runWile(args, { home });
    assert.equal(r.code, 0, dump(r));
    const certDir = certFiles(home, name).dir;
    if (isRoot) {
      giveToNobody(pub);
      // The directory and its archive only: the files in them stay nobody's and readable.
      for (const d of [certDir, join(certDir, "archive")]) {
        execFileSync("chown", ["0:0", d]);
        chmodSync(d, 0o755);
      }
      bin = otherUserBin();
    } else {
      chmodSync(certDir, 0o500);
    }
  });

  after(() => {
    if (!isRoot && home) chmodSync(certFiles(home, name).dir, 0o700);
  });

  for (const command of ["issue", "renew", "cron"] as const) {
    it(`${command}: exits naming the directory and the fix; the CA got no order; nothing changed`, async () => {
      const f = certFiles(home, name);
      const before = snapshot(home, name);
      const orders = proxy.newOrders().length;
      const argv =
        command === "issue"
          ? [...args, "--force"]
          : command === "renew"
            ? ["renew", name, "--force"]
            : ["cron"];
      const r = await runWile(argv, { home, ...(bin ? { bin } : {}) });
      const what = `${command} as ${isRoot ? "nobody" : "owner of a 0500 directory"}\n${dump(r)}`;
      console.log(
        `cert-check: unwritable certificate directory | ${command} | exit ${r.code} | ${r.stderr.split("\n").find((l) => /error/i.test(l)) ?? ""}`,
      );
      assert.equal(proxy.newOrders().length, orders, `an order was sent to the CA: ${what}`);
      // issue: 2 (configuration, nothing contacted); renew and cron report a certificate that failed: 1.
      assert.equal(r.code, command === "issue" ? 2 : 1, what);
      assert.ok(r.stderr.includes(`${f.dir} is not writable for this user`), what);
      assert.match(r.stderr, /nothing was ordered from the CA/, what);
      assert.match(r.stderr, /chown -R \$\(id -un\)/, what);
      assert.ok(!hasStackTrace(r.stderr) && !/internal error|EACCES:/.test(r.stderr), what);
      assert.deepEqual(snapshot(home, name), before, what);
    });
  }
});
