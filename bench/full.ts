/**
 * `npm run bench` (issue 6): wile against certbot, lego, dehydrated and uacme, each one that is
 * installed (nothing is installed here; the missing ones are named), on one local Pebble with
 * pebble-challtestsrv and nginx (test/helpers/testenv.ts), PEBBLE_VA_NOSLEEP=1,
 * PEBBLE_WFE_NONCEREJECT=0 (no badNonce retries adding noise) and PEBBLE_AUTHZREUSE=0 (every order
 * validates). Cases:
 *   1. one issuance of a fresh name, EC P-256, http-01 into the webroot, account registered;
 *   2. startup, `--version` or nearest, against `node -e 0`;
 *   3. the scheduled path with 20 certificates none due (each client's cron command), and wile alone
 *      over 20, 100, 1000 and 10 000 certificates against node -e 0 (bench/cron-scale.ts, issue 13);
 *   4. bulk: 50 fresh names as 50 certificates: wile as 50 `wile issue` processes 8 at a time, and
 *      `wile renew --all --force --parallel 8` over those 50; each peer the documented sequential way;
 *   5. processes started for one issuance (strace -f) and bytes installed;
 *   6. batch issuance (issue 13, bench/batch.ts): `wile issue --batch` over 1000 fresh names in one
 *      process, every certificate verified, with node -e 0 and the CA's own CPU as references.
 * Runs are interleaved (one run of every client per round, order rotated), ratios client/wile are
 * medians of the per-round ratios. Every issuance is checked (exit code, certificate for the right
 * name with an EC P-256 key) and every cron run must leave every certificate unchanged.
 * Prints a markdown table and writes .tmp/bench-full.json.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { serialHex } from "../test/helpers/certs";
import { issueArgs } from "../test/helpers/e2e";
import { startTestEnv, type TestEnv } from "../test/helpers/testenv";
import { repoRoot, tempDir } from "../test/helpers/wile";
import { type BatchFigures, batchCase, batchReport, batchTargets } from "./batch";
import { type CurvePoint, cronCurve, curveRows } from "./cron-scale";
import {
  type Cmd,
  checkCert,
  describe,
  GNU_TIME,
  max,
  median,
  min,
  pool,
  sum,
  type Timed,
  timed,
} from "./lib";
import { debVersion, PEERS, type Peer, which } from "./peers";

const { values } = parseArgs({
  options: {
    cjs: { type: "string" },
    runs: { type: "string", default: "5" },
    "startup-runs": { type: "string", default: "10" },
    "cron-certs": { type: "string", default: "20" },
    "scale-certs": { type: "string", default: "20,100,1000,10000" },
    "before-cjs": { type: "string" },
    bulk: { type: "string", default: "50" },
    parallel: { type: "string", default: "8" },
    peers: { type: "string" },
    batch: { type: "string", default: "1000" },
    "batch-parallel": { type: "string", default: "8" },
  },
});
const cjsGiven = resolve(values.cjs ?? join(repoRoot, "dist", "wile.cjs"));
const RUNS = Number(values.runs);
const STARTUP_RUNS = Number(values["startup-runs"]);
const CRON_CERTS = Number(values["cron-certs"]);
const SCALE_CERTS = (values["scale-certs"] ?? "").split(",").filter(Boolean).map(Number);
const BULK = Number(values.bulk);
const PARALLEL = Number(values.parallel);
const wanted = values.peers ? values.peers.split(",") : PEERS.map((p) => p.id);
const sea = join(repoRoot, "dist", "wile-linux-x64");
const SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt";
const EXTRA_NODE = "node -e 0 (NODE_EXTRA_CA_CERTS)";
const EXTRA_WILE = "wile (NODE_EXTRA_CA_CERTS)";

// uacme's libcurl-gnutls trusts only /etc/ssl/certs/ca-certificates.crt. As root, the benchmark
// re-runs itself in a private mount namespace (unshare -m) where that path is bind-mounted over with
// the system bundle plus Pebble's listener CA; nothing changes outside this process tree.
const IN_NS = process.env.WILE_BENCH_NS === "1";
if (!IN_NS && process.getuid?.() === 0 && wanted.includes("uacme") && which("uacme") && which("unshare")) {
  const r = spawnSync(
    "unshare",
    ["-m", "--propagation", "private", "--", process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: "inherit", env: { ...process.env, WILE_BENCH_NS: "1" } },
  );
  process.exit(r.status ?? 1);
}

for (const [f, pkg] of [
  [cjsGiven, "(npm run build)"],
  [GNU_TIME, "time"],
] as const) {
  if (!existsSync(f)) {
    console.error(`bench: ${f} is missing: ${pkg.startsWith("(") ? pkg : `apt-get install ${pkg}`}`);
    process.exit(1);
  }
}

const loads: string[] = [];
const log = (s: string) => {
  const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0] as string;
  loads.push(load);
  process.stderr.write(`bench: ${new Date().toISOString().slice(11, 19)} (load ${load}) ${s}\n`);
};
const loadStart = readFileSync("/proc/loadavg", "utf8").trim();
log(`load average at the start: ${loadStart}`);
const notes: string[] = [];
const missing = PEERS.filter((p) => wanted.includes(p.id) && !which(p.id)).map((p) => p.id);
if (missing.length) {
  const msg = `not installed, left out: ${missing.join(", ")} (apt-get install ${missing.join(" ")})`;
  log(msg);
  notes.push(msg);
}
const strace = which("strace");
if (!strace) notes.push("strace not installed: no process counts (apt-get install strace)");

// ---------------------------------------------------------------------------------------------
const root = tempDir("wile-bench-full-");
// A private copy: other people rebuilding dist/ during a 17-minute run must not change what is measured.
const cjs = join(root, "wile.cjs");
cpSync(cjsGiven, cjs);
const cjsSha256 = createHash("sha256").update(readFileSync(cjs)).digest("hex");
const fakeHome = join(root, "fake-home");
mkdirSync(fakeHome);
const wileEnv = (home: string): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: fakeHome,
  LANG: "C.UTF-8",
  NO_COLOR: "1",
  WILE_HOME: home,
});
const wileCmd = (home: string, args: string[]): Cmd => ({
  cmd: process.execPath,
  args: [cjs, ...args],
  env: wileEnv(home),
});

interface Client {
  id: string;
  version: string;
  issue: (name: string) => Cmd;
  certFile: (name: string) => string;
  setup: Cmd[];
  peer?: Peer;
  /** Names of the certificates this client holds (in its main home). */
  certs: string[];
}

const tag = Date.now().toString(36);
let nameSeq = 0;
const freshName = (client: string) => `n${nameSeq++}-${client}-${tag}.bench.example`;

async function mustIssue(c: Client, name: string, what: string): Promise<Timed> {
  const cmd = c.issue(name);
  const r = await timed(cmd);
  if (r.code !== 0) {
    throw new Error(`${c.id} ${what} (${name}) exited ${r.code}: ${describe(cmd)}\n${r.stderr.slice(-3000)}`);
  }
  checkCert(c.certFile(name), name, `${c.id} ${what}`);
  c.certs.push(name);
  return r;
}

/** sha256 of each certificate file: a cron run must leave them all as they were. */
function certHashes(c: Client, names: string[]): string[] {
  return names.map((n) =>
    createHash("sha256")
      .update(readFileSync(c.certFile(n)))
      .digest("hex"),
  );
}

const rotate = <T>(xs: T[], k: number): T[] => xs.map((_, i) => xs[(i + k) % xs.length] as T);

interface Series {
  wallS: number[];
  cpuS: number[];
  rssMB: number[];
}
const series = (): Series => ({ wallS: [], cpuS: [], rssMB: [] });
const push = (s: Series, r: { wallS: number; cpuS: number; rssMB: number }) => {
  s.wallS.push(r.wallS);
  s.cpuS.push(r.cpuS);
  s.rssMB.push(r.rssMB);
};

// Results, keyed by case then client.
const results: Record<string, Record<string, Series>> = {};
const ratioPairs: Record<string, Record<string, { wall: number[]; cpu: number[] }>> = {};
const how: Record<string, Record<string, string>> = {};
function record(kase: string, client: string, r: { wallS: number; cpuS: number; rssMB: number }) {
  results[kase] ??= {};
  results[kase][client] ??= series();
  push(results[kase][client], r);
}
function pair(
  kase: string,
  client: string,
  peer: { wallS: number; cpuS: number },
  wile: { wallS: number; cpuS: number },
) {
  ratioPairs[kase] ??= {};
  ratioPairs[kase][client] ??= { wall: [], cpu: [] };
  ratioPairs[kase][client].wall.push(peer.wallS / wile.wallS);
  ratioPairs[kase][client].cpu.push(peer.cpuS / wile.cpuS);
}
function setHow(kase: string, client: string, text: string) {
  how[kase] ??= {};
  how[kase][client] = text;
}

// ---------------------------------------------------------------------------------------------
const env: TestEnv = await startTestEnv({ env: { PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" } });
let failed = "";
const extra: Record<string, unknown> = {};
const clients: Client[] = [];
try {
  if (IN_NS) {
    const bundle = join(root, "system-plus-pebble.pem");
    writeFileSync(
      bundle,
      `${readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8")}\n${readFileSync(env.caBundle, "utf8")}`,
    );
    const m = spawnSync("mount", ["--bind", bundle, "/etc/ssl/certs/ca-certificates.crt"], {
      encoding: "utf8",
    });
    if (m.status !== 0) throw new Error(`mount --bind of the CA bundle failed: ${m.stderr}`);
  }

  // Clients ---------------------------------------------------------------------------------
  const wileHome = join(root, "wile");
  clients.push({
    id: "wile",
    version: `wile ${spawnSync(process.execPath, [cjs, "version"], { encoding: "utf8" })
      .stdout.trim()
      .replace(/^wile /, "")} (node ${process.version})`,
    issue: (name) => wileCmd(wileHome, issueArgs(env, [name])),
    certFile: (name) => join(wileHome, "certs", name, "cert.pem"),
    setup: [],
    certs: [],
  });
  for (const p of PEERS) {
    if (!wanted.includes(p.id) || missing.includes(p.id)) continue;
    if (p.id === "uacme" && !IN_NS) {
      notes.push("uacme left out: trusting Pebble's CA needs root (a private mount namespace)");
      continue;
    }
    const dir = join(root, p.id);
    mkdirSync(dir, { recursive: true });
    const peer = p.make(env, dir);
    clients.push({
      id: p.id,
      version: peer.version(),
      issue: peer.issue,
      certFile: peer.certFile,
      setup: peer.setup(),
      peer,
      certs: [],
    });
  }
  const wile = clients[0] as Client;
  const peers = clients.slice(1);

  // Account registration and a warm-up issuance each (untimed, checked) -----------------------
  for (const c of clients) {
    for (const s of c.setup) {
      const r = await timed(s);
      if (r.code !== 0) throw new Error(`${c.id} setup exited ${r.code}: ${describe(s)}\n${r.stderr}`);
    }
    await mustIssue(c, freshName(c.id), "warm-up issuance");
    log(`${c.id}: account registered, warm-up issuance ok`);
  }

  // 2. Startup ---------------------------------------------------------------------------------
  {
    const okCodes: Record<string, number[]> = {};
    for (const p of peers) okCodes[p.id] = p.peer?.versionOk ?? [0];
    // Issue 13: also with NODE_EXTRA_CA_CERTS set (as some hosts do; node then reads that file and
    // Node's bundled roots at start), against node -e 0 under the same variable; and wile's first
    // run in a home without the cache of the decompressed, compiled program (<home>/cache).
    const extraCa = existsSync(SYSTEM_CA) ? { NODE_EXTRA_CA_CERTS: SYSTEM_CA } : undefined;
    const noCacheHome = join(root, "no-such-home");
    const cmds: [string, Cmd][] = [
      ["node -e 0", { cmd: process.execPath, args: ["-e", "0"], env: wileEnv(wileHome) }],
      ["wile", wileCmd(wileHome, ["version"])],
      ["wile (no cache)", wileCmd(noCacheHome, ["version"])],
    ];
    if (extraCa) {
      cmds.push(
        [EXTRA_NODE, { cmd: process.execPath, args: ["-e", "0"], env: { ...wileEnv(wileHome), ...extraCa } }],
        [EXTRA_WILE, { ...wileCmd(wileHome, ["version"]), env: { ...wileEnv(wileHome), ...extraCa } }],
      );
    } else notes.push(`${SYSTEM_CA} is missing: no startup figures with NODE_EXTRA_CA_CERTS`);
    if (existsSync(sea))
      cmds.push(["wile (standalone)", { cmd: sea, args: ["--version"], env: wileEnv(wileHome) }]);
    for (const p of peers) cmds.push([p.id, p.peer?.versionCmd() as Cmd]);
    for (const [id, c] of cmds) setHow("startup", id, describe(c).replace(cjs, "dist/wile.cjs"));
    for (const [, c] of cmds) await timed(c); // warm the page cache
    const diffs: number[] = [];
    const noCacheDiffs: number[] = [];
    const extraCaDiffs: number[] = [];
    for (let i = 0; i < STARTUP_RUNS; i++) {
      const round: Record<string, Timed> = {};
      for (const [id, c] of rotate(cmds, i)) {
        const r = await timed(c);
        if (!(okCodes[id] ?? [0]).includes(r.code))
          throw new Error(`startup: ${describe(c)} exited ${r.code}: ${r.stderr}`);
        round[id] = r;
        record("startup", id, r);
      }
      const w = round.wile as Timed;
      const diff = (a: string, b: string) => ((round[a] as Timed).wallS - (round[b] as Timed).wallS) * 1000;
      diffs.push(diff("wile", "node -e 0"));
      noCacheDiffs.push(diff("wile (no cache)", "node -e 0"));
      if (extraCa) extraCaDiffs.push(diff(EXTRA_WILE, EXTRA_NODE));
      for (const [id] of cmds) if (id !== "wile") pair("startup", id, round[id] as Timed, w);
    }
    extra.startupDiffMs = diffs;
    extra.startupNoCacheDiffMs = noCacheDiffs;
    if (extraCa) extra.startupExtraCaDiffMs = extraCaDiffs;
    log("startup done");
  }

  // 1. One issuance ------------------------------------------------------------------------------
  for (const c of clients) setHow("issue", c.id, describe(c.issue("NAME")).replace(cjs, "dist/wile.cjs"));
  for (let i = 0; i < RUNS; i++) {
    const round: Record<string, Timed> = {};
    for (const c of rotate(clients, i)) {
      const r = await mustIssue(c, freshName(c.id), `issuance ${i + 1}`);
      round[c.id] = r;
      record("issue", c.id, r);
    }
    for (const p of peers) pair("issue", p.id, round[p.id] as Timed, round.wile as Timed);
    log(`issuance round ${i + 1}/${RUNS} done`);
  }

  // 5a. Processes for one issuance -------------------------------------------------------------
  if (strace) {
    const procs: Record<string, { execve: number; processes: number; threads: number; programs: string[] }> =
      {};
    for (const c of clients) {
      const name = freshName(c.id);
      const cmd = c.issue(name);
      const out = join(root, `strace-${c.id}.txt`);
      const r = await timed({
        cmd: strace,
        args: ["-f", "-qq", "-e", "trace=execve,clone,clone3,fork,vfork", "-o", out, cmd.cmd, ...cmd.args],
        env: cmd.env,
      });
      if (r.code !== 0) throw new Error(`strace ${c.id} issuance exited ${r.code}: ${r.stderr.slice(-2000)}`);
      checkCert(c.certFile(name), name, `${c.id} issuance under strace`);
      c.certs.push(name);
      const lines = readFileSync(out, "utf8").split("\n");
      const execs = lines.filter((l) => /\bexecve\(/.test(l) && !/= -1 /.test(l) && !/resumed>/.test(l));
      // A failed execve (PATH search) shows "= -1"; one split by another process's line shows on resume.
      const failedResumed = lines.filter((l) => /<\.\.\. execve resumed>.*= -1 /.test(l)).length;
      const starts = lines.filter((l) => /\b(clone3?|v?fork)\(/.test(l) && !/resumed>/.test(l));
      const threads = starts.filter((l) => /CLONE_THREAD/.test(l)).length;
      const programs = [
        ...new Set(
          execs.map((l) => /execve\("([^"]+)"/.exec(l)?.[1] ?? "?").map((p) => p.split("/").pop() ?? p),
        ),
      ];
      procs[c.id] = {
        execve: execs.length - failedResumed,
        processes: starts.length - threads,
        threads,
        programs,
      };
    }
    extra.processes = procs;
    log("strace done");
  }

  // 3. Cron with CRON_CERTS certificates, none due ------------------------------------------------
  for (const c of clients) {
    while (c.certs.length < CRON_CERTS) await mustIssue(c, freshName(c.id), "issuance for the cron case");
  }
  const cronCmds: Record<string, { cmds: Cmd[]; okCodes: number[] }> = {};
  {
    const w = { cmds: [wileCmd(wileHome, ["cron"])], okCodes: [0] };
    cronCmds.wile = w;
    setHow("cron", "wile", "wile cron (what `wile install-cron` puts in the crontab)");
    for (const p of peers) {
      const x = p.peer?.cron(p.certs) as { cmds: Cmd[]; okCodes: number[]; how: string };
      cronCmds[p.id] = x;
      setHow("cron", p.id, x.how);
    }
  }
  const before = Object.fromEntries(clients.map((c) => [c.id, certHashes(c, c.certs)]));
  const runCron = async (c: Client): Promise<Timed> => {
    const { cmds, okCodes } = cronCmds[c.id] as { cmds: Cmd[]; okCodes: number[] };
    const t0 = process.hrtime.bigint();
    const parts: Timed[] = [];
    for (const cmd of cmds) {
      const r = await timed(cmd);
      if (!okCodes.includes(r.code)) {
        throw new Error(
          `${c.id} cron: ${describe(cmd)} exited ${r.code}\n${r.stdout}${r.stderr}`.slice(0, 4000),
        );
      }
      parts.push(r);
    }
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    return {
      code: 0,
      wallS,
      cpuS: sum(parts.map((p) => p.cpuS)),
      rssMB: max(parts.map((p) => p.rssMB)),
      stdout: parts.map((p) => p.stdout).join(""),
      stderr: parts.map((p) => p.stderr).join(""),
    };
  };
  for (const c of clients) await runCron(c); // warm-up
  for (let i = 0; i < RUNS; i++) {
    const round: Record<string, Timed> = {};
    for (const c of rotate(clients, i)) {
      const r = await runCron(c);
      round[c.id] = r;
      record("cron", c.id, r);
    }
    for (const p of peers) pair("cron", p.id, round[p.id] as Timed, round.wile as Timed);
  }
  for (const c of clients) {
    const after = certHashes(c, c.certs);
    const changed = c.certs.filter((_, i) => after[i] !== before[c.id]?.[i]);
    if (changed.length)
      throw new Error(`${c.id} cron renewed certificates that were not due: ${changed.join(", ")}`);
  }
  log(`cron with ${CRON_CERTS} certificates done`);

  // 3b. wile alone at scale: SCALE_CERTS copies of one of the 20, against node -e 0 -----------------
  if (SCALE_CERTS.length > 0) {
    setHow(
      "cronScale",
      "wile",
      `wile cron over ${SCALE_CERTS.join(", ")} certificates (one of the ${CRON_CERTS} written again under that many names, test/helpers/clone-home.ts), each run paired with a node -e 0`,
    );
    extra.cronScale = await cronCurve({
      template: wileHome,
      name: wile.certs[0] as string,
      sizes: SCALE_CERTS,
      runs: RUNS,
      root,
      wile: wileCmd,
      ...(values["before-cjs"]
        ? {
            before: (home: string, args: string[]): Cmd => ({
              cmd: process.execPath,
              args: [resolve(values["before-cjs"] as string), ...args],
              env: wileEnv(home),
            }),
          }
        : {}),
      nodeE0: { cmd: process.execPath, args: ["-e", "0"], env: wileEnv(wileHome) },
      log,
    });
  }

  // 4. Bulk ---------------------------------------------------------------------------------------
  {
    let k = 0;
    const wileBulk = async (): Promise<{ issue: Timed; renew: Timed }> => {
      const home = join(root, `wile-bulk-${k++}`);
      mkdirSync(join(home, "certs"), { recursive: true });
      cpSync(join(wileHome, "accounts"), join(home, "accounts"), { recursive: true });
      const names = Array.from({ length: BULK }, () => freshName("wile"));
      const t0 = process.hrtime.bigint();
      const rs = await pool(names, PARALLEL, (n) => timed(wileCmd(home, issueArgs(env, [n]))));
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      rs.forEach((r, i) => {
        if (r.code !== 0) throw new Error(`wile bulk issue of ${names[i]} exited ${r.code}: ${r.stderr}`);
      });
      const certFile = (n: string) => join(home, "certs", n, "cert.pem");
      for (const n of names) checkCert(certFile(n), n, "wile bulk issue");
      const issue = {
        code: 0,
        wallS,
        cpuS: sum(rs.map((r) => r.cpuS)),
        rssMB: max(rs.map((r) => r.rssMB)),
        stdout: "",
        stderr: "",
      };
      const serials = names.map((n) => serialHex(certFile(n)));
      const renew = await timed(wileCmd(home, ["renew", "--all", "--force", "--parallel", String(PARALLEL)]));
      if (renew.code !== 0) throw new Error(`wile renew --all --force exited ${renew.code}: ${renew.stderr}`);
      names.forEach((n, i) => {
        checkCert(certFile(n), n, "wile renew --all --force");
        if (serialHex(certFile(n)) === serials[i])
          throw new Error(`wile renew --all --force left ${n} as it was`);
      });
      return { issue, renew };
    };
    setHow(
      "bulk",
      "wile",
      `${BULK} \`wile issue -d NAME ...\` processes, ${PARALLEL} at a time (one certificate each, account registered)`,
    );
    setHow(
      "bulkRenew",
      "wile",
      `\`wile renew --all --force --parallel ${PARALLEL}\` over those ${BULK} certificates (one process)`,
    );
    const peerBulk = async (p: Client): Promise<Timed> => {
      const names = Array.from({ length: BULK }, () => freshName(p.id));
      const b = p.peer?.bulk(names) as ReturnType<Peer["bulk"]>;
      setHow("bulk", p.id, b.how);
      const t0 = process.hrtime.bigint();
      const rs: Timed[] = [];
      for (const cmd of b.cmds) {
        const r = await timed(cmd, 900_000);
        if (r.code !== 0)
          throw new Error(`${p.id} bulk: ${describe(cmd)} exited ${r.code}: ${r.stderr.slice(-3000)}`);
        rs.push(r);
      }
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      for (const n of names) checkCert(b.certFile(n), n, `${p.id} bulk`);
      return {
        code: 0,
        wallS,
        cpuS: sum(rs.map((r) => r.cpuS)),
        rssMB: max(rs.map((r) => r.rssMB)),
        stdout: "",
        stderr: "",
      };
    };
    const order = peers.length ? peers : [undefined];
    for (const [i, p] of order.entries()) {
      const pFirst = i % 2 === 1 && p;
      const pr = pFirst ? await peerBulk(p) : undefined;
      const w = await wileBulk();
      record("bulk", "wile", w.issue);
      record("bulkRenew", "wile", w.renew);
      if (p) {
        const r = pr ?? (await peerBulk(p));
        record("bulk", p.id, r);
        pair("bulk", p.id, r, w.issue);
        pair("bulkRenew", p.id, r, w.renew);
      }
      log(`bulk ${p?.id ?? "wile"} done`);
    }
  }

  // 6. Batch issuance (issue 13) ------------------------------------------------------------------
  if (Number(values.batch) > 0) {
    extra.batch = await batchCase({
      env,
      root,
      n: Number(values.batch),
      parallel: Number(values["batch-parallel"]),
      wileCmd,
      nodeCmd: { cmd: process.execPath, args: ["-e", "0"], env: wileEnv(wileHome) },
      log,
    });
  }

  // 5b. Bytes installed --------------------------------------------------------------------------
  {
    const sizes: Record<string, unknown> = {};
    const nodeBin = process.execPath;
    sizes.wile = {
      "wile.cjs": statSync(cjs).size,
      "dist/wile-linux-x64 (standalone, includes node)": existsSync(sea) ? statSync(sea).size : null,
      [`node executable (${nodeBin})`]: statSync(nodeBin).size,
    };
    for (const p of peers) sizes[p.id] = installedSize(p.peer?.packages ?? []);
    extra.installed = sizes;
  }
} catch (e) {
  failed = (e as Error).stack ?? String(e);
} finally {
  await env.stop();
}

/** Installed packages pulled in by pkgs through Depends/Pre-Depends, pkgs included. */
function depClosure(pkgs: string[]): string[] {
  const r = spawnSync(
    "apt-cache",
    [
      "depends",
      "--recurse",
      "--installed",
      "--no-recommends",
      "--no-suggests",
      "--no-conflicts",
      "--no-breaks",
      "--no-replaces",
      "--no-enhances",
      ...pkgs,
    ],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  return [...new Set(r.stdout.split("\n").filter((l) => /^[a-z0-9]/.test(l)))];
}

/**
 * Installed-Size (dpkg, KiB) of pkgs alone, and with every installed package they pull in through
 * Depends/Pre-Depends, leaving out the Essential packages and their dependencies (libc6 and the
 * like, on every Debian system).
 */
function installedSize(pkgs: string[]) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format, not a template
  const ess = spawnSync("dpkg-query", ["-W", "-f", "${Package}\t${Essential}\n"], { encoding: "utf8" });
  const essential = ess.stdout
    .split("\n")
    .filter((l) => l.endsWith("\tyes"))
    .map((l) => l.split("\t")[0] as string);
  const base = new Set(depClosure(essential));
  const closure = depClosure(pkgs);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format, not a template
  const q = spawnSync("dpkg-query", ["-W", "-f", "${Package}\t${Installed-Size}\t${Status}\n", ...closure], {
    encoding: "utf8",
  });
  let own = 0;
  let withDeps = 0;
  const deps: string[] = [];
  for (const line of q.stdout.split("\n")) {
    const [name, size, status] = line.split("\t");
    if (!name || !status?.endsWith(" installed")) continue;
    const kib = Number(size) || 0;
    if (pkgs.includes(name)) own += kib;
    else if (base.has(name)) continue;
    else deps.push(name);
    withDeps += kib;
  }
  return { ownKiB: own, withDepsKiB: withDeps, deps: deps.sort() };
}

// ---------------------------------------------------------------------------------------------
// Report
const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const CASES: [string, string, number][] = [
  ["issue", "one issuance (s)", 3],
  ["startup", "startup --version (ms)", 1],
  ["cron", `cron, ${CRON_CERTS} certs none due (s)`, 3],
  ["bulk", `bulk ${BULK} certs (s)`, 2],
  ["bulkRenew", `bulk ${BULK}: wile renew --all --force --parallel ${PARALLEL} (s)`, 2],
];
const rows: string[][] = [];
for (const [kase, title, d] of CASES) {
  const byClient = results[kase];
  if (!byClient) continue;
  const scale = kase === "startup" ? 1000 : 1;
  for (const [id, s] of Object.entries(byClient)) {
    const pr = ratioPairs[kase]?.[id];
    rows.push([
      title,
      id,
      String(s.wallS.length),
      `${f(median(s.wallS) * scale, d)} (${f(min(s.wallS) * scale, d)}–${f(max(s.wallS) * scale, d)})`,
      f(median(s.cpuS), 2),
      f(median(s.rssMB), 1),
      pr ? `${f(median(pr.wall), 2)}` : id === "wile" ? "1" : "",
      pr ? `${f(median(pr.cpu), 2)}` : id === "wile" ? "1" : "",
    ]);
  }
  if (kase === "bulkRenew") {
    for (const [id, pr] of Object.entries(ratioPairs.bulkRenew ?? {})) {
      rows.push([
        `bulk ${BULK}: ${id} vs wile renew --all --parallel ${PARALLEL}`,
        id,
        "",
        "",
        "",
        "",
        f(median(pr.wall), 2),
        f(median(pr.cpu), 2),
      ]);
    }
  }
}
const header = [
  "case",
  "client",
  "n",
  "wall median (min–max)",
  "CPU user+sys s",
  "peak RSS MB",
  "wall ratio client/wile",
  "CPU ratio client/wile",
];
const table = [header, header.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");

// Targets
const targets: { target: string; value: string; met: boolean | null }[] = [];
if (results.issue?.wile && peers().length) {
  const fastest = peers()
    .map((id) => ({ id, med: median(results.issue?.[id]?.wallS ?? []) }))
    .sort((a, b) => a.med - b.med)[0] as { id: string; med: number };
  const ratio = median(ratioPairs.issue?.[fastest.id]?.wall ?? []);
  targets.push({
    target: "one issuance: wall no worse than the fastest peer",
    value: `fastest peer ${fastest.id}: ${f(fastest.med)} s vs wile ${f(median(results.issue.wile.wallS))} s; paired ratio ${f(ratio, 2)}`,
    met: ratio >= 1,
  });
  const cb = results.issue.certbot;
  if (cb) {
    const w = median(results.issue.wile.cpuS);
    const c = median(cb.cpuS);
    targets.push({
      target: "one issuance: client CPU under a quarter of certbot's",
      value: `wile ${f(w, 2)} s vs certbot ${f(c, 2)} s (${f(c / w, 1)}x)`,
      met: w < c / 4,
    });
  }
}
if (extra.startupDiffMs) {
  const d = median(extra.startupDiffMs as number[]);
  targets.push({
    target: "startup within 25 ms of node -e 0",
    value: `+${f(d, 1)} ms (median of paired differences)`,
    met: d <= 25,
  });
}
// Issue 13, part 1 (startup, CPU, size): where a peer is missing, node -e 0 of the startup case is
// the reference, and the table says so.
{
  const wIssue = results.issue?.wile;
  const node = results.startup?.["node -e 0"];
  const ref = (peer: string, what: (s: { wallS: number[]; cpuS: number[] }) => number[]) => {
    const p = results.issue?.[peer];
    return p && wIssue
      ? ` (${peer} ${f(median(what(p)), 3)} s: ${f(median(what(wIssue)) / median(what(p)), 2)}x)`
      : "";
  };
  if (wIssue && node) {
    const cpu = median(wIssue.cpuS);
    const wall = median(wIssue.wallS);
    const rss = median(wIssue.rssMB);
    const lego = ref("lego", (s) => s.cpuS);
    const uacme = ref("uacme", (s) => s.wallS);
    targets.push(
      {
        target: "issue 13: one issuance, client CPU <= 0.06 s and <= 2.5x lego's",
        value: `${f(cpu, 2)} s${lego || `; lego not installed: node -e 0 ${f(median(node.cpuS), 2)} s`}`,
        met: cpu <= 0.06 && (!lego || cpu <= 2.5 * median(results.issue?.lego?.cpuS ?? [])),
      },
      {
        target: "issue 13: one issuance, wall <= 0.10 s and <= 0.3x uacme's",
        value: `${f(wall)} s${uacme || "; uacme not installed"}`,
        met: wall <= 0.1 && (!uacme || wall <= 0.3 * median(results.issue?.uacme?.wallS ?? [])),
      },
      {
        target: "issue 13: one issuance, peak RSS <= node -e 0 + 10 MB",
        value: `${f(rss, 1)} MB; node -e 0 ${f(median(node.rssMB), 1)} MB (+${f(rss - median(node.rssMB), 1)} MB)`,
        met: rss <= median(node.rssMB) + 10,
      },
    );
  }
  for (const [key, label] of [
    ["startupDiffMs", "`wile version` over `node -e 0`"],
    ["startupExtraCaDiffMs", "`wile version` over `node -e 0`, both with NODE_EXTRA_CA_CERTS"],
    [
      "startupNoCacheDiffMs",
      "`wile version` over `node -e 0`, first run (no cache in the home; not a target)",
    ],
  ] as const) {
    const d = extra[key] as number[] | undefined;
    if (!d) continue;
    const m = median(d);
    targets.push({
      target: `issue 13: ${label} <= +10 ms`,
      value: `${m >= 0 ? "+" : ""}${f(m, 1)} ms (median of paired differences)`,
      met: key === "startupNoCacheDiffMs" ? null : m <= 10,
    });
  }
  const kb = statSync(cjs).size / 1024;
  targets.push({ target: "issue 13: dist/wile.cjs <= 250 KB", value: `${f(kb, 1)} KB`, met: kb <= 250 });
}
const scale = (extra.cronScale ?? []) as CurvePoint[];
for (const [certs, limit] of [
  [1000, 0.3],
  [10000, 3],
] as const) {
  const p = scale.find((x) => x.certs === certs);
  if (!p) continue;
  const m = median(p.wile.map((x) => x.wallS));
  targets.push({
    target: `${certs}-certificate cron, nothing due, at most ${limit} s (issue 13)`,
    value: `${f(m)} s (${f(p.ratio, 2)}x node -e 0)`,
    met: m <= limit,
  });
}
if (results.cron?.uacme) {
  const ratio = 1 / median(ratioPairs.cron?.uacme?.wall ?? []);
  targets.push({
    target: `${CRON_CERTS}-certificate cron, nothing due, at most 0.5x uacme's wall (issue 13)`,
    value: `wile / uacme ${f(ratio, 2)} (median of paired ratios)`,
    met: ratio <= 0.5,
  });
}
if (results.bulk?.wile && peers().length) {
  const fastest = peers()
    .filter((id) => results.bulk?.[id])
    .map((id) => ({ id, med: median(results.bulk?.[id]?.wallS ?? []) }))
    .sort((a, b) => a.med - b.med)[0];
  if (fastest) {
    for (const [kase, label] of [
      ["bulk", `${PARALLEL} parallel wile issue`],
      ["bulkRenew", `wile renew --all --force --parallel ${PARALLEL}`],
    ] as const) {
      const ratio = median(ratioPairs[kase]?.[fastest.id]?.wall ?? []);
      targets.push({
        target: `bulk ${BULK}: at least 3x faster than the fastest sequential peer (${label})`,
        value: `${fastest.id} ${f(fastest.med, 2)} s vs wile ${f(median(results[kase]?.wile?.wallS ?? []), 2)} s: ${f(ratio, 2)}x`,
        met: ratio >= 3,
      });
    }
  }
}
if (extra.batch) targets.push(...batchTargets(extra.batch as BatchFigures));
function peers(): string[] {
  return clients.filter((c) => c.id !== "wile").map((c) => c.id);
}
const targetTable = [
  "| target | measured | |",
  "| --- | --- | --- |",
  ...targets.map(
    (t) => `| ${t.target} | ${t.value} | ${t.met === null ? "" : t.met ? "met" : "**missed**"} |`,
  ),
].join("\n");

const loadavg = readFileSync("/proc/loadavg", "utf8").trim();
console.log(`\nwile vs peers (node ${process.version}; ${clients.map((c) => c.version).join("; ")})`);
console.log(`load average at the start: ${loadStart}; at the end: ${loadavg}\n`);
console.log(table);
if (scale.length > 0) console.log(`\ncron at scale (issue 13), none due:\n\n${curveRows(scale).join("\n")}`);
console.log(`\n${targetTable}\n`);
if (extra.processes) {
  console.log("| processes for one issuance | execve | processes (fork/clone) | threads | programs |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const [id, p] of Object.entries(
    extra.processes as Record<
      string,
      { execve: number; processes: number; threads: number; programs: string[] }
    >,
  )) {
    console.log(`| ${id} | ${p.execve} | ${p.processes} | ${p.threads} | ${p.programs.join(" ")} |`);
  }
  console.log("");
}
if (extra.installed) {
  const inst = extra.installed as Record<string, Record<string, unknown>>;
  console.log("| installed | bytes |\n| --- | --- |");
  for (const [k, v] of Object.entries(inst.wile ?? {})) console.log(`| wile: ${k} | ${v} |`);
  for (const [id, v] of Object.entries(inst)) {
    if (id === "wile") continue;
    const x = v as { ownKiB: number; withDepsKiB: number; deps: string[] };
    console.log(`| ${id}: package | ${x.ownKiB * 1024} |`);
    console.log(
      `| ${id}: with dependencies beyond the Essential set (${x.deps.length}) | ${x.withDepsKiB * 1024} |`,
    );
  }
  console.log("");
}
if (extra.batch) console.log(`${batchReport(extra.batch as BatchFigures, false)}\n`);
for (const n of notes) console.log(`note: ${n}`);

const out = join(repoRoot, ".tmp", "bench-full.json");
mkdirSync(join(repoRoot, ".tmp"), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      loadavg: { start: loadStart, end: loadavg, during: loads },
      node: process.version,
      wileCjs: { path: cjsGiven, bytes: statSync(cjs).size, sha256: cjsSha256 },
      versions: Object.fromEntries(clients.map((c) => [c.id, c.version])),
      debianVersions: Object.fromEntries(PEERS.map((p) => [p.id, debVersion(p.id)])),
      pebbleEnv: { PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" },
      settings: { RUNS, STARTUP_RUNS, CRON_CERTS, SCALE_CERTS, BULK, PARALLEL },
      how,
      results,
      ratios: Object.fromEntries(
        Object.entries(ratioPairs).map(([k, v]) => [
          k,
          Object.fromEntries(
            Object.entries(v).map(([id, p]) => [
              id,
              { ...p, medianWall: median(p.wall), medianCpu: median(p.cpu) },
            ]),
          ),
        ]),
      ),
      targets,
      ...extra,
      notes,
      failed: failed || undefined,
    },
    null,
    2,
  )}\n`,
);
console.log(`results: ${out}`);
if (failed) {
  console.error(`\nbench: FAILED: ${failed}`);
  process.exit(1);
}
