/**
 * install-cron / uninstall-cron against the real Debian `crontab` (package cron), for a non-root
 * user the test creates (wile-cron-test), as an operator would use them. The test needs root (to
 * create the user and run wile as it); without root, crontab or useradd it is skipped locally and
 * fails with CI=true. The user's crontab is saved first and restored at the end.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { commandOf, parseSchedule } from "../../src/cron/crontab";
import { run } from "../../src/util/spawn";
import { serialHex } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { repoRoot, wileCjs } from "../helpers/wile";

const USER = "wile-cron-test";
const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** Installs cron when missing (root only), as scripts/test.sh would. */
function ensureCrontab(): boolean {
  if (has("crontab")) return true;
  if (!isRoot) return false;
  spawnSync("bash", ["-c", ". scripts/debian-packages.sh && ensure_debian_packages cron"], {
    cwd: repoRoot,
    stdio: "inherit",
  });
  return has("crontab");
}

let unavailable: string | false = false;
if (!isRoot) unavailable = "needs root (creates a test user and runs wile as it)";
else if (!ensureCrontab()) unavailable = "no crontab program (apt-get install cron)";
else if (!has("useradd") || !has("runuser")) unavailable = "no useradd/runuser";
const skip = skipUnlessAvailable(unavailable);

let uid = 0;
let gid = 0;
let userHome = "";
let base = "";
let program: string[] = [];
let savedCrontab: string | null = null;
/** Pebble issuing 8-second certificates, so that one is due a few seconds after issuance. */
let env: TestEnv | undefined;
const VALIDITY_S = 8;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv as the test user in a cron-like environment (env -i: HOME, LOGNAME, PATH=/usr/bin:/bin). */
async function asUser(
  argv: string[],
  extraEnv: Record<string, string> = {},
  input?: string,
): Promise<Result> {
  const env = {
    HOME: userHome,
    LOGNAME: USER,
    USER,
    SHELL: "/bin/sh",
    PATH: "/usr/bin:/bin",
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    ...extraEnv,
  };
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const r = await run(["runuser", "-u", USER, "--", "env", "-i", ...envArgs, ...argv], {
    timeoutMs: 60_000,
    cwd: "/",
    ...(input === undefined ? {} : { input }),
  });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

const wile = (args: string[], extraEnv: Record<string, string> = {}) =>
  asUser([...program, ...args], extraEnv);
const show = (r: Result) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

async function crontabL(): Promise<string> {
  const r = await asUser(["crontab", "-l"]);
  if (r.code === 0) return r.stdout;
  assert.match(r.stderr, /no crontab/, show(r));
  return "";
}

async function setCrontab(text: string): Promise<void> {
  const r = await asUser(["crontab", "-"], {}, text);
  assert.equal(r.code, 0, show(r));
}

const wileLines = (text: string, home: string) =>
  text.split("\n").filter((l) => !l.startsWith("#") && l.trimEnd().endsWith(` # wile:${home}`));

before(async () => {
  if (skip) return;
  assert.ok(existsSync(wileCjs), `${wileCjs} is missing: run npm run build`);
  if (spawnSync("id", ["-u", USER]).status !== 0) execFileSync("useradd", ["-m", "-s", "/bin/sh", USER]);
  uid = Number(execFileSync("id", ["-u", USER], { encoding: "utf8" }).trim());
  gid = Number(execFileSync("id", ["-g", USER], { encoding: "utf8" }).trim());
  userHome = execFileSync("sh", ["-c", `getent passwd ${USER} | cut -d: -f6`], { encoding: "utf8" }).trim();
  assert.ok(userHome.startsWith("/"), `home of ${USER}: ${userHome}`);
  // A copy of the bundle the test user can surely read (the checkout may be in a private place).
  base = mkdtempSync("/tmp/wile-cron-e2e-");
  chmodSync(base, 0o755);
  mkdirSync(join(base, "bin"), { mode: 0o755 });
  copyFileSync(wileCjs, join(base, "bin", "wile.cjs"));
  chmodSync(join(base, "bin", "wile.cjs"), 0o755);
  program = [process.execPath, join(base, "bin", "wile.cjs")];
  for (const h of ["home-a", "home-b"]) {
    mkdirSync(join(base, h), { mode: 0o700 });
    chownSync(join(base, h), uid, gid);
  }
  const r = await asUser(["crontab", "-l"]);
  savedCrontab = r.code === 0 ? r.stdout : null;
  env = await startTestEnv({ validityPeriod: VALIDITY_S, env: { PEBBLE_AUTHZREUSE: "0" } });
  // The test user reads the CA bundle and writes challenge files into nginx's webroot.
  chmodSync(env.tmp, 0o755);
  chmodSync(env.caBundle, 0o644);
  mkdirSync(join(env.webroot, ".well-known", "acme-challenge"), { recursive: true });
  chownSync(join(env.webroot, ".well-known", "acme-challenge"), uid, gid);
});

after(async () => {
  await env?.stop();
  if (skip || !base) return;
  if (savedCrontab === null) await asUser(["crontab", "-r"]);
  else await asUser(["crontab", "-"], {}, savedCrontab);
  rmSync(base, { recursive: true, force: true });
});

const opts = { skip };

describe("install-cron / uninstall-cron with the real crontab, as a non-root user", () => {
  it(
    "installs one line, idempotently, keeps other lines, and uninstalls exactly that line",
    opts,
    async () => {
      const homeA = join(base, "home-a");
      const homeB = join(base, "home-b");
      const unrelated = '# the operator\'s own jobs\nMAILTO=""\n7 7 * * * /bin/true unrelated   # keep me\n';
      await setCrontab(unrelated);

      const first = await wile(["install-cron", "--home", homeA]);
      assert.equal(first.code, 0, show(first));
      assert.equal(first.stdout, "", "nothing on stdout");
      const afterFirst = await crontabL();
      assert.ok(afterFirst.startsWith(unrelated), `unrelated lines kept byte for byte:\n${afterFirst}`);
      const lines = wileLines(afterFirst, homeA);
      assert.equal(lines.length, 1, afterFirst);
      const line = lines[0] as string;
      assert.equal(afterFirst, `${unrelated}${line}\n`);

      // The schedule: a minute, and two hours 12 h apart; kept in config.json.
      const schedule = parseSchedule(line);
      assert.ok(schedule, line);
      assert.ok(schedule.minute >= 0 && schedule.minute <= 59);
      assert.equal(schedule.hours[1] - schedule.hours[0], 12, line);
      const cfg = JSON.parse(readFileSync(join(homeA, "config.json"), "utf8"));
      assert.deepEqual(cfg.cron, schedule);
      // Absolute program paths and the home; stderr is not redirected (cron mails failures).
      assert.ok(line.includes(` ${program.join(" ")} cron --home ${homeA} # wile:${homeA}`), line);
      assert.doesNotMatch(line, /2>/);

      const second = await wile(["install-cron", "--home", homeA]);
      assert.equal(second.code, 0, show(second));
      assert.match(second.stderr, /Already installed/);
      assert.equal(await crontabL(), afterFirst, "a second install changes nothing");

      // Dry run shows the same line and changes nothing.
      const dry = await wile(["install-cron", "--dry-run", "--home", homeA]);
      assert.equal(dry.code, 0, show(dry));
      assert.equal(dry.stdout, `${line}\n`);

      // A second home gets its own line next to the first.
      const b = await wile(["install-cron", "--home", homeB]);
      assert.equal(b.code, 0, show(b));
      const both = await crontabL();
      assert.equal(wileLines(both, homeA).length, 1);
      assert.equal(wileLines(both, homeB).length, 1);

      // uninstall-cron removes exactly home A's line.
      const un = await wile(["uninstall-cron", "--home", homeA]);
      assert.equal(un.code, 0, show(un));
      const afterUn = await crontabL();
      assert.equal(afterUn, `${unrelated}${wileLines(both, homeB)[0]}\n`);
      const again = await wile(["uninstall-cron", "--home", homeA]);
      assert.equal(again.code, 0, show(again));
      assert.match(again.stderr, /Nothing to remove/);
      const unB = await wile(["uninstall-cron", "--home", homeB]);
      assert.equal(unB.code, 0, show(unB));
      assert.equal(await crontabL(), unrelated, "back to the operator's crontab, byte for byte");

      // Reinstalling keeps the time chosen the first time.
      const re = await wile(["install-cron", "--home", homeA]);
      assert.equal(re.code, 0, show(re));
      assert.deepEqual(wileLines(await crontabL(), homeA), [line]);
    },
  );

  it(
    "the installed line, run verbatim through sh -c as the user in cron's environment, renews a due certificate",
    opts,
    async () => {
      assert.ok(env);
      const homeA = join(base, "home-a");
      const name = "cron-line.example";
      const issued = await wile([...issueArgs(env, [name]), "--home", homeA]);
      assert.equal(issued.code, 0, show(issued));
      const cert = join(homeA, "certs", name, "cert.pem");
      const before = serialHex(cert);
      // Due once half of the 8-second lifetime has passed.
      await new Promise((r) => setTimeout(r, (VALIDITY_S / 2 + 1) * 1000));
      const ins = await wile(["install-cron", "--home", homeA]);
      assert.equal(ins.code, 0, show(ins));
      const line = wileLines(await crontabL(), homeA)[0];
      assert.ok(line);
      const command = commandOf(line);
      const r = await asUser(["/bin/sh", "-c", command]);
      assert.equal(r.code, 0, `${command}\n${show(r)}`);
      assert.equal(r.stdout, "", "wile cron prints nothing on stdout when all is well");
      assert.equal(r.stderr, "", "nor on stderr: cron would mail it");
      assert.notEqual(serialHex(cert), before, "the line renewed the certificate");
    },
  );

  it(
    "without a crontab program: says so and offers --systemd; --systemd writes a user timer",
    opts,
    async () => {
      const homeB = join(base, "home-b");
      const missing = await wile(["install-cron", "--home", homeB], { PATH: "/nonexistent" });
      assert.equal(missing.code, 1, show(missing));
      assert.match(missing.stderr, /no crontab program/);
      assert.match(missing.stderr, /--systemd/);

      // No user bus here: the files are written and the commands to enable them are printed.
      const env = {
        XDG_RUNTIME_DIR: join(base, "no-runtime"),
        DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent",
      };
      const sd = await wile(["install-cron", "--systemd", "--home", homeB], env);
      assert.equal(sd.code, 0, show(sd));
      const unitDir = join(userHome, ".config", "systemd", "user");
      const timerName = /(wile-[0-9a-f]{8})\.timer/.exec(sd.stderr)?.[1];
      assert.ok(timerName, sd.stderr);
      const timer = readFileSync(join(unitDir, `${timerName}.timer`), "utf8");
      const service = readFileSync(join(unitDir, `${timerName}.service`), "utf8");
      const cfg = JSON.parse(readFileSync(join(homeB, "config.json"), "utf8"));
      const hh = cfg.cron.hours.map((h: number) => String(h).padStart(2, "0")).join(",");
      assert.match(
        timer,
        new RegExp(`^OnCalendar=\\*-\\*-\\* ${hh}:${String(cfg.cron.minute).padStart(2, "0")}:00$`, "m"),
      );
      assert.match(timer, /^Persistent=true$/m);
      assert.match(service, new RegExp(`cron --home ${homeB}$`, "m"));
      assert.match(sd.stderr, /systemctl --user enable --now/);
      const un = await wile(["uninstall-cron", "--systemd", "--home", homeB], env);
      assert.equal(un.code, 0, show(un));
      assert.equal(existsSync(join(unitDir, `${timerName}.timer`)), false);
      assert.equal(existsSync(join(unitDir, `${timerName}.service`)), false);
    },
  );
});
