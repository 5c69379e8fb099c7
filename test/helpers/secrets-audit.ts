/**
 * The secrets audit of the e2e suite (issue 10 part 7), active when WILE_TEST_AUDIT_DIR is set
 * (scripts/run-tests.mjs e2e sets it). Each test file's process appends to that directory:
 *   runs-<pid>.jsonl   one line per runWile: argv, env keys, exit code, stdout, stderr;
 *   files-<pid>.jsonl  one line per scan of a directory tree: counts, key files checked, leaks.
 * scripts/secrets-audit.mjs then reads them all, scans the outputs once more with every secret of
 * the whole run, and fails with the list of leaks.
 *
 * What is scanned: after each run, the home and every path in its argv under the temp directory
 * (files, directories, and the files next to a path given); before removal, every tempDir() and
 * the TestEnv webroot. TestEnv's own directory (its listener CA key, Pebble's config with the
 * EAB keys the CA must know) is the CA's side and is skipped.
 *
 * Where key material may be (design.md "State on disk", src/deploy/outputs.ts):
 *   - in a home: accounts/.../account.key (and .next, .old-<UTC>), certs/<name>/archive/<v>/privkey.pem
 *     (also under removed/<name>-<UTC>/, where `wile remove` moves certs/<name>), and the
 *     `.NAME.tmp-HEX` temp files of their atomic writes (a kill -9 leaves them);
 *   - outside any home (deploy targets, test fixtures): any file;
 * a PKCS#12 password given with --pfx-password: certs/<name>/renewal.json (src/deploy/pfx.ts: "a
 * given one is stored in renewal.json") and the deploy target's PATH.pass; an EAB HMAC key: nowhere.
 * Every file allowed to hold a secret must be 0600 or stricter, or group-readable (0640) when a
 * run asked for a group with --owner USER:GROUP / :GROUP or for that mode with --mode (files target:
 * "default 0600, 0640 with a group").
 */
import { appendFileSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { findKeyMaterial, findSecrets, type Secret, secretsFromArgv, uniqueSecrets } from "./secret-scan";

const auditDir = (): string | undefined => process.env.WILE_TEST_AUDIT_DIR || undefined;

/** Files larger than this are read only this far. */
const READ_CAP = 8 * 1024 * 1024;
/** Files looked at per directory walk at most (a runaway tree must not stall the suite). */
const WALK_CAP = 2000;

export interface Leak {
  file: string;
  what: string;
  why: string;
}

export interface ScanPolicy {
  /** wile homes (WILE_HOME, --home) and the fake HOME: only the layout's key files may hold keys. */
  homes: string[];
  /** Secrets the runs handed to wile. */
  secrets: Secret[];
  /** Group-readable key files are allowed (a run gave --owner with a group or --mode 0640). */
  groupModes: number[];
}

const state = {
  homes: new Set<string>(),
  secrets: [] as Secret[],
  groupModes: new Set<number>(),
  infra: new Set<string>(),
  seen: new Set<string>(),
};

/** A directory of the test infrastructure (the CA's side): its own files are not wile's output. */
export function auditInfra(dir: string): void {
  state.infra.add(resolve(dir));
}

/** Learns from a run's argv and env (homes, secrets, asked-for modes); records it; scans what it touched. */
export function auditRun(
  argv: readonly string[],
  env: Record<string, string>,
  result: { code: number; stdout: string; stderr: string },
): void {
  const dir = auditDir();
  if (!dir) return;
  for (const h of [env.WILE_HOME, env.HOME, ...optionValues(argv, "--home")])
    if (h) state.homes.add(resolve(h));
  state.secrets = uniqueSecrets([...state.secrets, ...secretsFromArgv(argv)]);
  for (const v of optionValues(argv, "mode", true)) {
    const m = /^(?:0o?)?([0-7]{3,4})$/.exec(v);
    if (m) state.groupModes.add(Number.parseInt(m[1] as string, 8));
  }
  if (optionValues(argv, "owner", true).some((v) => v.includes(":"))) state.groupModes.add(0o640);
  appendFileSync(
    join(dir, `runs-${process.pid}.jsonl`),
    `${JSON.stringify({
      test: relative(process.cwd(), process.argv[1] ?? "?"),
      argv,
      envKeys: Object.keys(env).sort(),
      code: result.code,
      stdout: result.stdout,
      stderr: result.stderr,
    })}\n`,
  );
  const touched = new Set<string>([env.WILE_HOME ?? "", env.HOME ?? ""]);
  const tmp = resolve(tmpdir());
  for (const a of argv) {
    const p = a.includes("=") && !isAbsolute(a) ? a.slice(a.indexOf("=") + 1) : a;
    if (!isAbsolute(p) || !resolve(p).startsWith(tmp + sep) || dirname(resolve(p)) === tmp) continue;
    touched.add(p);
    touched.add(`${dirname(p)}${sep}`); // the files next to it, not below
  }
  for (const t of touched)
    if (t) auditTree(t.endsWith(sep) ? t.slice(0, -1) : t, t.endsWith(sep) ? 1 : Infinity);
}

/**
 * A secret a test hands to wile outside argv (a DNS API token in the environment): scanned for in
 * this process's trees from now on, and in every run's output by scripts/secrets-audit.mjs (which
 * reads it back as `learned` from files-<pid>.jsonl).
 */
export function auditSecret(kind: Secret["kind"], value: string): void {
  const dir = auditDir();
  if (!dir) return;
  state.secrets = uniqueSecrets([...state.secrets, { kind, value }]);
  const scan = { files: 0, bytes: 0, logLines: 0, keyFiles: [], learned: [{ kind, value }], leaks: [] };
  appendFileSync(
    join(dir, `files-${process.pid}.jsonl`),
    `${JSON.stringify({ test: relative(process.cwd(), process.argv[1] ?? "?"), root: "(registered secret)", ms: 0, ...scan })}\n`,
  );
}

/** Values of `--<name>` options (or of any option ending in -<name> with suffix). */
function optionValues(argv: readonly string[], name: string, suffix = false): string[] {
  const out: string[] = [];
  const matches = (f: string) => (suffix ? f === `--${name}` || f.endsWith(`-${name}`) : f === name);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    if (eq > 0 && matches(a.slice(0, eq))) out.push(a.slice(eq + 1));
    else if (matches(a) && argv[i + 1] !== undefined) out.push(argv[i + 1] as string);
  }
  return out;
}

/** Scans a file or a tree (to `depth` levels) and appends the result to files-<pid>.jsonl. */
export function auditTree(root: string, depth = Infinity): void {
  const dir = auditDir();
  if (!dir) return;
  const started = performance.now();
  const r = scanTree(resolve(root), policy(), depth, state.seen, state.infra);
  const ms = Math.round((performance.now() - started) * 10) / 10;
  if (r.files === 0 && r.leaks.length === 0) return;
  appendFileSync(
    join(dir, `files-${process.pid}.jsonl`),
    `${JSON.stringify({ test: relative(process.cwd(), process.argv[1] ?? "?"), root, ms, ...r })}\n`,
  );
}

function policy(): ScanPolicy {
  return { homes: [...state.homes], secrets: state.secrets, groupModes: [...state.groupModes] };
}

export interface TreeScan {
  /** Regular files read (each version once per process). */
  files: number;
  bytes: number;
  /** Lines of wile's log files (logs/wile.log*) among them. */
  logLines: number;
  /** Files holding key material or a secret where that is allowed, and whose mode was checked. */
  keyFiles: string[];
  /** PKCS#12 passwords found in PATH.pass files (random ones wile made): secrets from now on. */
  learned: Secret[];
  leaks: Leak[];
}

/**
 * Walks `root` (a file or a directory, without following symlinks) and checks every regular file
 * against the policy. `seen` skips file versions (path, inode, size, mtime) already scanned.
 */
export function scanTree(
  root: string,
  pol: ScanPolicy,
  depth = Infinity,
  seen = new Set<string>(),
  skipDirs = new Set<string>(),
): TreeScan {
  const out: TreeScan = { files: 0, bytes: 0, logLines: 0, keyFiles: [], learned: [], leaks: [] };
  const files: string[] = [];
  const walk = (p: string, d: number) => {
    if (files.length >= WALK_CAP) return;
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isFile()) {
      if (!skipDirs.has(dirname(p))) files.push(p);
    } else if (st.isDirectory() && d > 0) {
      let names: string[] = [];
      try {
        names = readdirSync(p);
      } catch {
        return;
      }
      for (const n of names.sort()) walk(join(p, n), d - 1);
    }
  };
  walk(root, depth);
  // Passwords wile was given or made, learned first so that they are found anywhere else: a random
  // PKCS#12 password of the files target (PATH.pass), and a renewal.json's pfxPassword (a test may
  // write one there instead of passing --pfx-password).
  for (const f of files) {
    if (f.endsWith(".pass") && existsNextTo(f)) {
      const v = read(f)?.toString("utf8").trim();
      if (v) out.learned.push({ kind: "pfx-password", value: v });
    } else if (basename(f) === "renewal.json") {
      for (const v of fieldValues(read(f)?.toString("utf8") ?? "", "pfxPassword")) {
        out.learned.push({ kind: "pfx-password", value: v });
      }
    }
  }
  const secrets = uniqueSecrets([...pol.secrets, ...out.learned]);
  if (out.learned.length > 0) state.secrets = uniqueSecrets([...state.secrets, ...out.learned]);
  for (const f of files) {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(f);
    } catch {
      continue;
    }
    const id = `${f}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const data = read(f);
    if (!data) continue;
    out.files++;
    out.bytes += data.length;
    if (/\/logs\/wile\.log(\.\d+)?$/.test(f)) out.logLines += data.toString("latin1").split("\n").length - 1;
    const found = [
      ...findKeyMaterial(data.toString("latin1")).map((what) => ({ what, key: true as const })),
      ...findSecrets(data, secrets).map((s) => ({ what: s.kind, key: false as const, secret: s })),
    ];
    if (found.length === 0) continue;
    const home = pol.homes.find((h) => f.startsWith(h + sep));
    let held = true;
    for (const x of found) {
      const why = x.key ? keyAllowed(f, home) : secretAllowed(f, home, x.what);
      if (why) {
        held = false;
        out.leaks.push({ file: f, what: x.what, why });
      }
    }
    if (!held) continue;
    const mode = st.mode & 0o777;
    out.keyFiles.push(f);
    const groupOk = !home && (mode & 0o037) === 0 && pol.groupModes.includes(mode);
    if ((mode & 0o077) !== 0 && !groupOk) {
      out.leaks.push({
        file: f,
        what: found.map((x) => x.what).join(", "),
        why:
          `mode 0${mode.toString(8)}: a file holding a secret must be 0600 or stricter` +
          (home ? "" : " (a test's own fixture: write it 0600, or register its directory with auditInfra())"),
      });
    }
  }
  return out;
}

/** String values of every `field` in a JSON text (none when it does not parse). */
function fieldValues(json: string, field: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === field && typeof x === "string" && x !== "") out.push(x);
        else walk(x);
      }
    }
  };
  try {
    walk(JSON.parse(json));
  } catch {
    // a damaged renewal.json: nothing to learn
  }
  return out;
}

function existsNextTo(passFile: string): boolean {
  try {
    return lstatSync(passFile.slice(0, -".pass".length)).isFile();
  } catch {
    return false;
  }
}

function read(f: string): Buffer | undefined {
  try {
    const data = readFileSync(f);
    return data.length > READ_CAP ? data.subarray(0, READ_CAP) : data;
  } catch {
    return undefined;
  }
}

/** undefined when key material may be in `f`, else why not. */
function keyAllowed(f: string, home: string | undefined): string | undefined {
  if (!home) return undefined;
  const rel = homePath(home, f);
  if (/^accounts\/.+\/account\.key(\.next|\.old-[^/]+)?$/.test(rel)) return undefined;
  // certs/<name>/ and, after `wile remove`, removed/<name>-<UTC>/ (the same directory moved).
  if (/^(certs|removed)\/[^/]+\/archive\/[^/]+\/privkey\.pem$/.test(rel)) return undefined;
  return `key material in ${rel} under the wile home (only account.key* and archive/*/privkey.pem may hold keys)`;
}

/**
 * `f` relative to `home`, a temp file of an atomic write (fs-safe.ts tempPathFor: `.NAME.tmp-HEX`,
 * left behind by a kill -9) named as the file it was to become.
 */
function homePath(home: string, f: string): string {
  return relative(home, f)
    .split(sep)
    .join("/")
    .replace(/(^|\/)\.([^/]+)\.tmp-[0-9a-f]+$/, "$1$2");
}

/** undefined when the secret `kind` may be in `f`, else why not. */
function secretAllowed(f: string, home: string | undefined, kind: string): string | undefined {
  if (kind === "pfx-password") {
    if (home && /^(certs|removed)\/[^/]+\/renewal\.json$/.test(homePath(home, f))) return undefined;
    if (!home && f.endsWith(".pass")) return undefined;
    return `a PKCS#12 password in ${home ? relative(home, f) : basename(f)} (only renewal.json and PATH.pass may hold it)`;
  }
  return "an EAB HMAC key written to a file (it must never be stored)";
}
