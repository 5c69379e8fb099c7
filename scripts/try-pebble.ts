/**
 * The README's try-it path: start a local Pebble + nginx (test/helpers/testenv.ts), issue a
 * certificate for try.example with dist/wile.cjs into a temp home, list it, check it with openssl,
 * print where everything is, and stop the servers. Run: bash scripts/try-pebble.sh
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestEnv } from "../test/helpers/testenv";
import { wileCjs } from "../test/helpers/wile";

const name = "try.example";
const bold = process.stdout.isTTY && !process.env.NO_COLOR;
const say = (s: string) => console.log(bold ? `\n\x1b[1m> ${s}\x1b[0m` : `\n> ${s}`);

say("starting Pebble, pebble-challtestsrv and nginx on 127.0.0.1");
const env = await startTestEnv();
let code = 0;
try {
  const home = mkdtempSync(join(tmpdir(), "wile-try-"));
  console.log(
    `  ACME directory: ${env.directoryUrl}\n  its TLS CA:     ${env.caBundle}\n  webroot:        ${env.webroot} (nginx on 127.0.0.1:${env.httpPort})`,
  );

  const wile = (args: string[]) => {
    console.log(`  $ wile ${args.join(" ")}`);
    const r = spawnSync(process.execPath, [wileCjs, ...args], { stdio: "inherit" });
    return r.status ?? 1;
  };
  say(`issuing a certificate for ${name}`);
  code = wile([
    "issue",
    "-d",
    name,
    "-w",
    env.webroot,
    "--server",
    env.directoryUrl,
    "--ca-bundle",
    env.caBundle,
    "--resolve",
    env.resolveArg(name),
    "--home",
    home,
  ]);
  if (code !== 0) throw new Error(`wile issue exited ${code}`);

  say("wile list");
  code = wile(["list", "--home", home]);
  if (code !== 0) throw new Error(`wile list exited ${code}`);

  say("checking with openssl");
  const dir = join(home, "certs", name);
  const root = join(home, "pebble-root.pem");
  writeFileSync(root, await env.pebbleRoot());
  const ossl = (args: string[]) => {
    console.log(`  $ openssl ${args.join(" ")}`);
    const r = spawnSync("openssl", args, { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed`);
  };
  ossl([
    "x509",
    "-in",
    join(dir, "cert.pem"),
    "-noout",
    "-subject",
    "-issuer",
    "-dates",
    "-ext",
    "subjectAltName",
  ]);
  ossl(["verify", "-CAfile", root, "-untrusted", join(dir, "chain.pem"), join(dir, "cert.pem")]);

  say("done");
  console.log(`  wile home:   ${home}
  certificate: ${dir}/{cert,chain,fullchain,privkey}.pem, renewal.json
  Pebble root: ${root} (Pebble makes a new one each start)
  Pebble and nginx are stopped now; remove ${home} when you are done.`);
} catch (e) {
  console.error(`\ntry-pebble: ${(e as Error).message}; server logs in ${env.tmp}`);
  code = code || 1;
  process.env.WILE_KEEP_TESTENV = "1";
} finally {
  await env.stop();
}
process.exit(code);
