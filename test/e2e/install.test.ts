/**
 * install.sh, `wile upgrade` and `wile uninstall` as an operator would use them: a non-root user the
 * test creates (wile-install-test) pipes install.sh from a loopback HTTP server into sh, with curl
 * and node on PATH (wile.cjs behind a wrapper), and with wget under busybox ash and a PATH of
 * busybox applets only (no node: the standalone binary). Then it issues a certificate with the
 * installed program (Pebble + nginx from testenv), runs the crontab line verbatim, upgrades to a
 * second build with another version, installs again, uninstalls, and checks that a tampered
 * download installs nothing. The standalone binary comes compressed: each form is installed and
 * upgraded to (.xz with xz-utils and with busybox's applets, .gz where xz is absent from PATH), and
 * a checksum mismatch of the compressed file, a download cut short (by the server, or a short file)
 * and a file that does not decompress all install nothing and leave no temp file. Every step runs as
 * that user; root only prepares the user and serves.
 *
 * Two release folders are built with scripts/release.mjs --fast (x64 binary only, xz -0 and
 * gzip -1, in parallel). Needs root, useradd/runuser, curl, wget, busybox, xz and crontab: skipped
 * locally without them, a failure under CI=true.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import { after, before, describe, it } from "node:test";
import { commandOf } from "../../src/cron/crontab";
import { run } from "../../src/util/spawn";
import { skipUnlessAvailable } from "../helpers/ci";
import { issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { repoRoot } from "../helpers/wile";

const USER = "wile-install-test";
const NEW_VERSION = "0.1.1-e2e";
const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

let unavailable: string | false = false;
if (!isRoot) unavailable = "needs root (creates a test user and runs the installer as it)";
else {
  const missing = ["useradd", "runuser", "curl", "wget", "busybox", "crontab", "shellcheck", "xz"].filter(
    (c) => !has(c),
  );
  if (missing.length > 0)
    unavailable = `missing ${missing.join(", ")} (apt-get install passwd util-linux curl wget busybox cron shellcheck xz-utils)`;
}
const skip = skipUnlessAvailable(unavailable);

const pkgVersion = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version as string;
let uid = 0;
let gid = 0;
let userHome = "";
let base = "";
let bb = "";
/** bb without busybox's xz applets: the .gz form. */
let bbNoXz = "";
/** The x64 binary of release a, decompressed. */
let plainA: Buffer;
let server: Server | undefined;
let url = "";
let env: TestEnv | undefined;
let savedCrontab: string | null = null;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv as the test user with env -i: only HOME, LOGNAME, USER, PATH (default /usr/bin:/bin) and extras. */
async function asUser(
  argv: string[],
  extraEnv: Record<string, string> = {},
  input?: string,
): Promise<Result> {
  const e = {
    HOME: userHome,
    LOGNAME: USER,
    USER,
    PATH: "/usr/bin:/bin",
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    ...extraEnv,
  };
  const r = await run(
    [
      "runuser",
      "-u",
      USER,
      "--",
      "/usr/bin/env",
      "-i",
      ...Object.entries(e).map(([k, v]) => `${k}=${v}`),
      ...argv,
    ],
    { timeoutMs: 120_000, cwd: "/", ...(input === undefined ? {} : { input }) },
  );
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}
const show = (r: Result) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

async function crontabL(): Promise<string> {
  const r = await asUser(["crontab", "-l"]);
  if (r.code === 0) return r.stdout;
  assert.match(r.stderr, /no crontab/, show(r));
  return "";
}
const wileLines = (text: string, home: string) =>
  text.split("\n").filter((l) => !l.startsWith("#") && l.trimEnd().endsWith(` # wile:${home}`));

/** Builds a release folder with scripts/release.mjs (x64 binary only, fast compression). */
function release(out: string, version?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [
      "scripts/release.mjs",
      "--out",
      out,
      "--arch",
      "x64",
      "--fast",
      ...(version ? ["--version", version] : []),
    ];
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`release.mjs ${args.join(" ")}: exit ${code}\n${err}`)),
    );
  });
}

/**
 * Serves `root` read-only over http://127.0.0.1:<port>/. Under /abort/ it serves the files of /a/,
 * but cuts the connection after half of a compressed binary (its content-length promised all).
 */
function serve(root: string): Promise<{ server: Server; url: string }> {
  const srv = createServer((req, res) => {
    const want = decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/");
    const abort = want.startsWith("/abort/");
    const path = normalize(join(root, abort ? want.replace("/abort/", "/a/") : want));
    if (!path.startsWith(`${root}/`) || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end("not found\n");
      return;
    }
    const size = statSync(path).size;
    res.writeHead(200, { "content-length": size, "content-type": "application/octet-stream" });
    if (abort && /\.(xz|gz)$/.test(path)) {
      createReadStream(path, { end: Math.floor(size / 2) })
        .on("end", () => res.destroy())
        .pipe(res, { end: false });
    } else createReadStream(path).pipe(res);
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () =>
      resolve({ server: srv, url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` }),
    ),
  );
}

/** Removes what a run (maybe an interrupted or failed one) left in the test user's home: ~/.wile* and ~/.local. */
function clearHomes(): void {
  for (const d of readdirSync(userHome))
    if (d.startsWith(".wile") || d === ".local") rmSync(join(userHome, d), { recursive: true, force: true });
}

const sh = (script: string, extraEnv: Record<string, string> = {}) =>
  asUser(["/bin/sh", "-c", script], extraEnv);

before(async () => {
  if (skip) return;
  if (spawnSync("id", ["-u", USER]).status !== 0) execFileSync("useradd", ["-m", "-s", "/bin/sh", USER]);
  uid = Number(execFileSync("id", ["-u", USER], { encoding: "utf8" }).trim());
  gid = Number(execFileSync("id", ["-g", USER], { encoding: "utf8" }).trim());
  userHome = execFileSync("sh", ["-c", `getent passwd ${USER} | cut -d: -f6`], { encoding: "utf8" }).trim();
  assert.ok(userHome.startsWith("/"), `home of ${USER}: ${userHome}`);
  clearHomes();

  base = mkdtempSync("/tmp/wile-install-e2e-");
  chmodSync(base, 0o755);
  const rel = join(base, "rel");
  mkdirSync(rel, { mode: 0o755 });
  const [relA, relB] = ["a", "b"].map((n) => join(rel, n)) as [string, string];
  await Promise.all([release(relA), release(relB, NEW_VERSION), startTestEnv().then((e) => (env = e))]);
  assert.deepEqual(
    readdirSync(relA).filter((n) => n.startsWith("wile-linux")),
    ["wile-linux-x64.gz", "wile-linux-x64.xz"],
    "the binary is published compressed only",
  );
  plainA = execFileSync("xz", ["-dc", join(relA, "wile-linux-x64.xz")], { maxBuffer: 1 << 30 });
  const sumsA = readFileSync(join(relA, "SHA256SUMS"), "utf8");
  const hex = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
  /** A copy of release a (links) with `files` written over and SHA256SUMS lines replaced by `lines`. */
  const variant = (name: string, files: Record<string, Buffer | string>, lines: Record<string, string>) => {
    const dir = join(rel, name);
    mkdirSync(dir);
    for (const f of readdirSync(relA))
      if (!(f in files) && f !== "SHA256SUMS") symlinkSync(join(relA, f), join(dir, f));
    for (const [f, body] of Object.entries(files)) writeFileSync(join(dir, f), body);
    let sums = sumsA;
    for (const [f, hash] of Object.entries(lines)) {
      const next = sums.replace(new RegExp(`^[0-9a-f]{64}(?= {2}${f.replace(/\./g, "\\.")}$)`, "m"), hash);
      assert.notEqual(next, sums, f);
      sums = next;
    }
    writeFileSync(join(dir, "SHA256SUMS"), sums);
  };
  // Tampered: wile.cjs changed after SHA256SUMS was written, and the lines of both binary forms altered.
  variant(
    "bad",
    { "wile.cjs": `${readFileSync(join(relA, "wile.cjs"), "utf8")}\n// tampered\n` },
    { "wile-linux-x64.xz": hex("tampered"), "wile-linux-x64.gz": hex("tampered too") },
  );
  // Cut short where it is stored: the first half of each compressed file, SHA256SUMS as published.
  const half = (f: string) => readFileSync(join(relA, f)).subarray(0, statSync(join(relA, f)).size >> 1);
  variant(
    "short",
    { "wile-linux-x64.xz": half("wile-linux-x64.xz"), "wile-linux-x64.gz": half("wile-linux-x64.gz") },
    {},
  );
  // Published broken: halves whose SHA256SUMS lines match, so only decompressing finds it.
  variant(
    "broken",
    { "wile-linux-x64.xz": half("wile-linux-x64.xz"), "wile-linux-x64.gz": half("wile-linux-x64.gz") },
    {
      "wile-linux-x64.xz": hex(half("wile-linux-x64.xz")),
      "wile-linux-x64.gz": hex(half("wile-linux-x64.gz")),
    },
  );
  ({ server, url } = await serve(rel));

  // A PATH of busybox applets only (no node, no coreutils), plus Debian's crontab for install-cron.
  bb = join(base, "bb");
  mkdirSync(bb, { mode: 0o755 });
  execFileSync("busybox", ["--install", "-s", bb]);
  symlinkSync(
    execFileSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).trim(),
    join(bb, "busybox"),
  );
  rmSync(join(bb, "crontab"), { force: true });
  symlinkSync(
    execFileSync("sh", ["-c", "command -v crontab"], { encoding: "utf8" }).trim(),
    join(bb, "crontab"),
  );
  assert.equal(existsSync(join(bb, "node")), false);
  assert.ok(existsSync(join(bb, "xz")), "busybox has the xz applets");
  bbNoXz = join(base, "bb-noxz");
  mkdirSync(bbNoXz, { mode: 0o755 });
  for (const n of readdirSync(bb))
    if (!["xz", "unxz", "xzcat"].includes(n)) symlinkSync(readlinkSync(join(bb, n)), join(bbNoXz, n));

  assert.ok(env);
  chmodSync(env.tmp, 0o755);
  chmodSync(env.caBundle, 0o644);
  mkdirSync(join(env.webroot, ".well-known", "acme-challenge"), { recursive: true });
  chownSync(join(env.webroot, ".well-known", "acme-challenge"), uid, gid);

  const r = await asUser(["crontab", "-l"]);
  savedCrontab = r.code === 0 ? r.stdout : null;
  await asUser(["crontab", "-r"]);
});

after(async () => {
  server?.close();
  await env?.stop();
  if (skip || !base) return;
  if (savedCrontab === null) await asUser(["crontab", "-r"]);
  else await asUser(["crontab", "-"], {}, savedCrontab);
  clearHomes();
  if (!process.env.WILE_KEEP_TMP) rmSync(base, { recursive: true, force: true });
});

const opts = { skip };

describe("install.sh, wile upgrade and wile uninstall as a non-root user", () => {
  const home = () => join(userHome, ".wile");
  const bin = () => join(home(), "bin");
  const NAME = "install.example";

  it("install.sh is shellcheck-clean and parses under dash, bash and busybox ash", opts, () => {
    const script = join(repoRoot, "install.sh");
    for (const argv of [
      ["shellcheck", "-s", "sh", script],
      ["dash", "-n", script],
      ["bash", "-n", script],
      ["busybox", "ash", "-n", script],
    ]) {
      const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: "utf8" });
      assert.equal(r.status, 0, `${argv.join(" ")}\n${r.stdout}${r.stderr}`);
    }
  });

  it("refuses to run as root unless --allow-root, and says why", opts, () => {
    const fakeHome = mkdtempSync(join(base, "root-home-"));
    const r = spawnSync("sh", [join(repoRoot, "install.sh")], {
      env: { PATH: "/usr/bin:/bin", HOME: fakeHome, WILE_DOWNLOAD_URL: `${url}/a` },
      encoding: "utf8",
    });
    assert.equal(r.status, 2, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /refusing to install as root/);
    assert.match(r.stderr, /wile needs no root/);
    assert.match(r.stderr, /--allow-root/);
    assert.equal(existsSync(join(fakeHome, ".wile")), false);
  });

  it(
    "curl | sh with node on PATH installs wile.cjs behind a wrapper, stores --email, adds the crontab line",
    opts,
    async () => {
      const r = await sh(`curl -fsSL ${url}/a/install.sh | sh -s -- --email me@example.com`, {
        WILE_DOWNLOAD_URL: `${url}/a`,
      });
      assert.equal(r.code, 0, show(r));
      assert.match(
        r.stderr,
        new RegExp(`installed wile ${pkgVersion.replace(/\./g, "\\.")} at ${bin()}/wile \\(wile\\.cjs\\)`),
      );
      assert.match(r.stderr, /export PATH=/, "~/.local/bin is not on PATH: says how to add the directory");
      const wrapper = readFileSync(join(bin(), "wile"), "utf8");
      assert.match(wrapper, /^#!\/bin\/sh\n/);
      assert.ok(wrapper.includes(`exec '/usr/bin/node' '${bin()}/wile.cjs' "$@"`), wrapper);
      assert.deepEqual(
        readFileSync(join(bin(), "wile.cjs")),
        readFileSync(join(base, "rel", "a", "wile.cjs")),
      );
      const record = JSON.parse(readFileSync(join(bin(), "install.json"), "utf8"));
      assert.equal(record.downloadUrl, `${url}/a`);
      assert.equal(record.kind, "node");
      assert.equal(JSON.parse(readFileSync(join(home(), "config.json"), "utf8")).email[0], "me@example.com");
      for (const p of [home(), bin(), join(bin(), "wile"), join(bin(), "wile.cjs")])
        assert.equal(statSync(p).uid, uid, p);
      assert.equal(statSync(home()).mode & 0o777, 0o700);
      const lines = wileLines(await crontabL(), home());
      assert.equal(lines.length, 1);
      assert.ok(
        lines[0]?.includes(` /usr/bin/node ${bin()}/wile.cjs cron --home ${home()} # wile:`),
        lines[0],
      );
    },
  );

  it(
    "the installed wile issues a certificate into the user's webroot; the crontab line runs verbatim",
    opts,
    async () => {
      assert.ok(env);
      // PATH without node's directory does not matter: the wrapper names node by its absolute path.
      const issued = await asUser([join(bin(), "wile"), ...issueArgs(env, [NAME])], { PATH: bb });
      assert.equal(issued.code, 0, show(issued));
      assert.ok(existsSync(join(home(), "certs", NAME, "fullchain.pem")));
      const line = wileLines(await crontabL(), home())[0] as string;
      const r = await sh(commandOf(line));
      assert.equal(r.code, 0, show(r));
      assert.equal(`${r.stdout}${r.stderr}`, "", "all well: nothing for cron to mail");
      assert.match(readFileSync(join(home(), "logs", "wile.log"), "utf8"), /cron/);
    },
  );

  it(
    "wile upgrade: up to date from the recorded address; --from a newer build swaps it and keeps a backup",
    opts,
    async () => {
      const wile = join(bin(), "wile");
      const same = await asUser([wile, "upgrade"]);
      assert.equal(same.code, 0, show(same));
      assert.match(same.stderr, /is up to date/);

      const bad = await asUser([wile, "upgrade", "--from", `${url}/bad`]);
      assert.equal(bad.code, 1, show(bad));
      assert.match(bad.stderr, /checksum mismatch for wile\.cjs/);
      assert.deepEqual(
        readFileSync(join(bin(), "wile.cjs")),
        readFileSync(join(base, "rel", "a", "wile.cjs")),
      );

      const up = await asUser([wile, "upgrade", "--from", `${url}/b`]);
      assert.equal(up.code, 0, show(up));
      assert.match(
        up.stderr,
        new RegExp(`Upgraded wile ${pkgVersion.replace(/\./g, "\\.")} -> ${NEW_VERSION}`),
      );
      assert.equal((await asUser([wile, "version"])).stdout, `wile ${NEW_VERSION}\n`);
      assert.deepEqual(
        readFileSync(join(bin(), "wile.cjs.prev")),
        readFileSync(join(base, "rel", "a", "wile.cjs")),
      );
      assert.equal(JSON.parse(readFileSync(join(bin(), "install.json"), "utf8")).downloadUrl, `${url}/b`);
      assert.equal(readdirSync(bin()).filter((n) => n.includes("download")).length, 0, "no temp file left");
      const line = wileLines(await crontabL(), home())[0] as string;
      const r = await sh(commandOf(line));
      assert.equal(r.code, 0, show(r));
    },
  );

  it(
    "install.sh again upgrades in place keeping the state; a third run changes nothing; links into ~/.local/bin",
    opts,
    async () => {
      const cron = await crontabL();
      const cert = readFileSync(join(home(), "certs", NAME, "cert.pem"), "utf8");
      const PATH = `${userHome}/.local/bin:/usr/bin:/bin`;
      const again = await sh(`curl -fsSL ${url}/a/install.sh | sh`, { WILE_DOWNLOAD_URL: `${url}/a`, PATH });
      assert.equal(again.code, 0, show(again));
      assert.match(
        again.stderr,
        new RegExp(`upgraded wile ${NEW_VERSION} -> ${pkgVersion.replace(/\./g, "\\.")}`),
      );
      const third = await sh(`curl -fsSL ${url}/a/install.sh | sh`, { WILE_DOWNLOAD_URL: `${url}/a`, PATH });
      assert.equal(third.code, 0, show(third));
      assert.match(third.stderr, /already installed .* \(unchanged\)/);
      assert.match(third.stderr, /Already installed in the crontab/);
      assert.equal(await crontabL(), cron, "the crontab is the same");
      assert.equal(readFileSync(join(home(), "certs", NAME, "cert.pem"), "utf8"), cert);
      assert.equal(JSON.parse(readFileSync(join(home(), "config.json"), "utf8")).email[0], "me@example.com");
      const link = join(userHome, ".local", "bin", "wile");
      assert.equal(readlinkSync(link), join(bin(), "wile"));
      const v = await asUser(["wile", "version"], { PATH });
      assert.equal(v.stdout, `wile ${pkgVersion}\n`, show(v));
    },
  );

  it(
    "wget | busybox ash without node installs the standalone binary; it upgrades and uninstalls with --purge",
    opts,
    async () => {
      assert.ok(env);
      const h2 = join(userHome, ".wile-bb");
      const r = await asUser(
        ["busybox", "ash", "-c", `wget -qO- ${url}/a/install.sh | busybox ash -s -- --home ${h2}`],
        {
          PATH: bb,
          WILE_DOWNLOAD_URL: `${url}/a`,
        },
      );
      assert.equal(r.code, 0, show(r));
      assert.match(r.stderr, /downloading \S+\/a\/wile-linux-x64\.xz\n/, "busybox's xz applet: the .xz form");
      assert.match(r.stderr, /\(wile-linux-x64\)/);
      assert.match(r.stderr, /WILE_HOME=/, "a home other than ~/.wile: says how to use it");
      const prog = join(h2, "bin", "wile");
      assert.deepEqual(readFileSync(prog), plainA);
      assert.equal(existsSync(join(h2, "bin", "wile.cjs")), false);
      const line = wileLines(await crontabL(), h2)[0];
      assert.ok(line?.includes(` ${prog} cron --home ${h2} # wile:${h2}`), line);
      assert.equal(wileLines(await crontabL(), home()).length, 1, "the other home's line is kept");

      const issued = await asUser([prog, ...issueArgs(env, ["bb.example"]), "--home", h2], { PATH: bb });
      assert.equal(issued.code, 0, show(issued));
      const c = await sh(commandOf(line as string));
      assert.equal(c.code, 0, show(c));
      assert.equal(`${c.stdout}${c.stderr}`, "");

      const up = await asUser([prog, "upgrade", "--from", `${url}/b`], { PATH: bb });
      assert.equal(up.code, 0, show(up));
      assert.match(up.stderr, /Fetched wile-linux-x64\.xz; its SHA-256 matches/);
      assert.match(up.stderr, new RegExp(`-> ${NEW_VERSION} \\(${prog}\\)`));
      assert.equal((await asUser([prog, "version"], { PATH: bb })).stdout, `wile ${NEW_VERSION}\n`);
      assert.ok(existsSync(`${prog}.prev`));

      const noYes = await asUser([prog, "uninstall", "--purge"], { PATH: bb });
      assert.equal(noYes.code, 2, show(noYes));
      assert.ok(existsSync(prog), "not confirmed: nothing removed");
      const un = await asUser([prog, "uninstall", "--purge", "--yes"], { PATH: bb });
      assert.equal(un.code, 0, show(un));
      assert.equal(existsSync(h2), false);
      assert.equal(wileLines(await crontabL(), h2).length, 0);
      assert.equal(wileLines(await crontabL(), home()).length, 1);
    },
  );

  it(
    "a tampered download is refused and nothing is installed (curl + node, and busybox without node)",
    opts,
    async () => {
      const h3 = join(userHome, ".wile-bad");
      const a = await sh(`curl -fsSL ${url}/bad/install.sh | sh -s -- --home ${h3}`, {
        WILE_DOWNLOAD_URL: `${url}/bad`,
      });
      assert.equal(a.code, 1, show(a));
      assert.match(a.stderr, /checksum mismatch for wile\.cjs/);
      assert.match(a.stderr, /Nothing was installed/);
      assert.equal(existsSync(h3), false);
      const b = await asUser(
        ["busybox", "ash", "-c", `wget -qO- ${url}/bad/install.sh | busybox ash -s -- --home ${h3}`],
        {
          PATH: bb,
          WILE_DOWNLOAD_URL: `${url}/bad`,
        },
      );
      assert.equal(b.code, 1, show(b));
      assert.match(b.stderr, /checksum mismatch for wile-linux-x64\.xz/);
      assert.equal(existsSync(h3), false);
      assert.equal(wileLines(await crontabL(), h3).length, 0);
    },
  );

  it(
    "each compressed form: .xz with xz-utils, .gz without xz on PATH (install and upgrade)",
    opts,
    async () => {
      const hx = join(userHome, ".wile-xz");
      const hg = join(userHome, ".wile-gz");
      const [x, g] = await Promise.all([
        sh(`curl -fsSL ${url}/a/install.sh | sh -s -- --standalone --no-cron --home ${hx}`, {
          WILE_DOWNLOAD_URL: `${url}/a`,
        }),
        asUser(["busybox", "ash", "-c", `wget -qO- ${url}/a/install.sh | ash -s -- --no-cron --home ${hg}`], {
          PATH: bbNoXz,
          WILE_DOWNLOAD_URL: `${url}/a`,
        }),
      ]);
      assert.equal(x.code, 0, show(x));
      assert.match(x.stderr, /downloading \S+\/a\/wile-linux-x64\.xz\n/);
      assert.equal(g.code, 0, show(g));
      assert.match(g.stderr, /downloading \S+\/a\/wile-linux-x64\.gz\n/, "no xz on PATH: the .gz form");
      for (const h of [hx, hg]) {
        assert.deepEqual(readFileSync(join(h, "bin", "wile")), plainA, h);
        assert.deepEqual(readdirSync(join(h, "bin")).sort(), ["install.json", "wile"], h);
      }
      // wile upgrade without xz on PATH: .gz, decompressed by zlib.
      const prog = join(hg, "bin", "wile");
      const same = await asUser([prog, "upgrade", "--json"], { PATH: bbNoXz });
      assert.equal(same.code, 0, show(same));
      assert.deepEqual(JSON.parse(same.stdout), {
        ok: true,
        path: prog,
        from: `${url}/a`,
        file: "wile-linux-x64.gz",
        changed: false,
        version: pkgVersion,
      });
      assert.match(
        same.stderr,
        /Fetched wile-linux-x64\.gz; .*\n.*is up to date/,
        "the decompressed file is compared",
      );
      const up = await asUser([prog, "upgrade", "--from", `${url}/b`], { PATH: bbNoXz });
      assert.equal(up.code, 0, show(up));
      assert.match(up.stderr, /Fetched wile-linux-x64\.gz; its SHA-256 matches/);
      assert.equal((await asUser([prog, "version"])).stdout, `wile ${NEW_VERSION}\n`);
      assert.deepEqual(readFileSync(`${prog}.prev`), plainA);
      assert.deepEqual(readdirSync(join(hg, "bin")).sort(), ["install.json", "wile", "wile.prev"]);
      rmSync(hg, { recursive: true, force: true });
    },
  );

  it(
    "a compressed download cut short, mismatched or undecompressable installs and upgrades nothing, and leaves no temp file",
    opts,
    async () => {
      const tmpRoot = mkdtempSync(join(base, "tmpdir-"));
      chownSync(tmpRoot, uid, gid);
      const h = (n: string) => join(userHome, `.wile-fail-${n}`);
      const cases: { name: string; path: string; shell: string; fetch: string; want: RegExp }[] = [
        // The server cuts the connection: curl and busybox wget fail, or the checksum catches it.
        {
          name: "abort-curl",
          path: "/usr/bin:/bin",
          shell: "sh",
          fetch: "curl -fsSL",
          want: /could not download \S+\/abort\/wile-linux-x64\.xz|checksum mismatch for wile-linux-x64\.xz/,
        },
        {
          name: "abort-bb",
          path: bbNoXz,
          shell: "ash",
          fetch: "wget -qO-",
          want: /could not download \S+\/abort\/wile-linux-x64\.gz|checksum mismatch for wile-linux-x64\.gz/,
        },
        // A short file served whole: the checksum of the compressed file, before decompressing.
        {
          name: "short",
          path: bb,
          shell: "ash",
          fetch: "wget -qO-",
          want: /checksum mismatch for wile-linux-x64\.xz: .*\n.*cut short/,
        },
        {
          name: "short",
          path: bbNoXz,
          shell: "ash",
          fetch: "wget -qO-",
          want: /checksum mismatch for wile-linux-x64\.gz/,
        },
        // Matches SHA256SUMS but does not decompress.
        {
          name: "broken",
          path: "/usr/bin:/bin",
          shell: "sh",
          fetch: "curl -fsSL",
          want: /could not decompress wile-linux-x64\.xz with xz -dc\n.*Nothing was installed/,
        },
        {
          name: "broken",
          path: bbNoXz,
          shell: "ash",
          fetch: "wget -qO-",
          want: /could not decompress wile-linux-x64\.gz with gzip -dc/,
        },
      ];
      const results = await Promise.all(
        cases.map((c, i) =>
          asUser(
            [
              "/bin/sh",
              "-c",
              `${c.fetch} ${url}/a/install.sh | ${c.shell} -s -- --standalone --no-cron --home ${h(`${i}`)}`,
            ],
            { PATH: c.path, WILE_DOWNLOAD_URL: `${url}/${c.name.replace(/-.*/, "")}`, TMPDIR: tmpRoot },
          ),
        ),
      );
      cases.forEach((c, i) => {
        const r = results[i] as Result;
        assert.equal(r.code, 1, `${c.name} ${c.path}\n${show(r)}`);
        assert.match(r.stderr, c.want, `${c.name} ${c.path}\n${show(r)}`);
        assert.match(r.stderr, /[Nn]othing was installed/);
        assert.equal(existsSync(h(`${i}`)), false, `${c.name}: no home made`);
      });
      assert.deepEqual(readdirSync(tmpRoot), [], "no temp file left");

      // wile upgrade: the same three, for the binary installed above (.xz, and .gz without xz on PATH).
      const prog = join(userHome, ".wile-xz", "bin", "wile");
      const ups = await Promise.all(
        [
          ["abort", bb, /GET \S+\/abort\/wile-linux-x64\.xz|checksum mismatch for wile-linux-x64\.xz/],
          ["short", bbNoXz, /checksum mismatch for wile-linux-x64\.gz/],
          ["bad", bb, /checksum mismatch for wile-linux-x64\.xz/],
          ["broken", bb, /could not decompress wile-linux-x64\.xz \(\S+\/xz -dc\)/],
          ["broken", bbNoXz, /could not decompress wile-linux-x64\.gz \(zlib\)/],
        ].map(([rel, path, want]) =>
          asUser([prog, "upgrade", "--from", `${url}/${rel}`], { PATH: path as string }).then((r) => ({
            r,
            rel,
            want,
          })),
        ),
      );
      for (const { r, rel, want } of ups) {
        assert.equal(r.code, 1, `${rel}\n${show(r)}`);
        assert.match(r.stderr, want as RegExp, `${rel}\n${show(r)}`);
        assert.match(r.stderr, /Nothing was changed/);
        assert.match(r.stderr, /^hint: /m);
      }
      assert.deepEqual(readFileSync(prog), plainA);
      assert.deepEqual(
        readdirSync(join(userHome, ".wile-xz", "bin")).sort(),
        ["install.json", "wile"],
        "no temp file left",
      );
      rmSync(join(userHome, ".wile-xz"), { recursive: true, force: true });
    },
  );

  it(
    "wile uninstall removes the crontab line, the program and its link, and keeps the certificates",
    opts,
    async () => {
      const link = join(userHome, ".local", "bin", "wile");
      const r = await asUser([join(bin(), "wile"), "uninstall"]);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stderr, /Removed from the crontab/);
      assert.match(r.stderr, /Kept /);
      assert.equal(wileLines(await crontabL(), home()).length, 0);
      assert.equal(existsSync(bin()), false);
      assert.throws(() => lstatSync(link));
      assert.ok(existsSync(join(home(), "certs", NAME, "fullchain.pem")));
      assert.ok(existsSync(join(home(), "config.json")));
      // Not installed by install.sh: refused, nothing touched.
      const copy = join(base, "wile-copy.cjs");
      copyFileSync(join(base, "rel", "a", "wile.cjs"), copy);
      chmodSync(copy, 0o755);
      const refused = await asUser(["/usr/bin/node", copy, "uninstall"]);
      assert.equal(refused.code, 2, show(refused));
      assert.match(refused.stderr, /not installed by install\.sh/);
      assert.ok(existsSync(copy));
      unlinkSync(copy);
    },
  );
});
