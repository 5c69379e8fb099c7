/**
 * Runs wile the way an operator would: `node dist/wile.cjs ...` (or a standalone binary) in a clean
 * environment, so nothing from the developer's shell leaks in.
 *
 * The state directory is passed as WILE_HOME=<opts.home> (design.md: --home, else $WILE_HOME, else
 * ~/.wile), so callers never add --home themselves and every command, `version` included, gets the
 * same argv it would get from a user. HOME points at a separate, empty temp dir: a CLI that ignored
 * WILE_HOME would write there, and the tests that look under opts.home would fail.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { auditRun, auditTree } from "./secrets-audit";

export const repoRoot = resolve(import.meta.dirname, "..", "..");
export const wileCjs = join(repoRoot, "dist", "wile.cjs");
export const wileX64 = join(repoRoot, "dist", "wile-linux-x64");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** True when the run was killed at timeoutMs (code is then 124). */
  timedOut: boolean;
  /** Wall time in milliseconds. */
  ms: number;
  /** opts.interrupt's signal was sent. */
  interrupted: boolean;
}

export interface RunOptions {
  /** wile's state directory (WILE_HOME). */
  home: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Default 60 s; the child gets SIGKILL after it. */
  timeoutMs?: number;
  /** A standalone binary to run instead of `node dist/wile.cjs` (default: $WILE_TEST_BIN if set; "" forces dist/wile.cjs). */
  bin?: string;
  /** Text for stdin (default: none, stdin is closed). */
  input?: string;
  /** The directory wile starts in (default: this process's). */
  cwd?: string;
  /** Run the child under this umask (e.g. 0o000), through /bin/sh. */
  umask?: number;
  /**
   * Send `signal` once stderr matches `when` (and `afterMs` more have passed); `before` runs just
   * before it is sent, to look at what the run has made so far.
   */
  interrupt?: { when: RegExp; signal: NodeJS.Signals; afterMs?: number; before?: () => void };
}

const dirs: string[] = [];
let cleanupHooked = false;

/** A fresh temp dir (0700), removed by cleanupTempDirs() or at process exit (unless WILE_KEEP_TMP is set). */
export function tempDir(prefix = "wile-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  if (!cleanupHooked) {
    cleanupHooked = true;
    process.on("exit", cleanupTempDirs);
  }
  return dir;
}

/** Removes every dir made by tempDir() so far. */
export function cleanupTempDirs(): void {
  while (dirs.length > 0) {
    const d = dirs.pop();
    if (!d) continue;
    auditTree(d);
    if (!process.env.WILE_KEEP_TMP) rmSync(d, { recursive: true, force: true });
  }
}

let fakeHome: string | undefined;

/** The program to run: [command, ...leading args]. */
export function wileCommand(bin?: string): string[] {
  const b = bin ?? process.env.WILE_TEST_BIN;
  if (b) return [b];
  return [process.execPath, wileCjs];
}

export function runWile(args: string[], opts: RunOptions): Promise<RunResult> {
  const [cmd, ...lead] = wileCommand(opts.bin) as [string, ...string[]];
  if (!existsSync(cmd === process.execPath ? (lead[0] as string) : cmd)) {
    return Promise.reject(
      new Error(
        `${cmd === process.execPath ? lead[0] : cmd} does not exist: run npm run build (or build:sea) first`,
      ),
    );
  }
  fakeHome ??= tempDir("wile-fake-home-");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: fakeHome,
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    WILE_HOME: opts.home,
    ...opts.env,
  };
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const argv = [cmd, ...lead, ...args];
    const child =
      opts.umask === undefined
        ? spawn(cmd, argv.slice(1), { env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] })
        : spawn(
            "/bin/sh",
            ["-c", `umask ${opts.umask.toString(8).padStart(3, "0")} && exec "$@"`, "sh", ...argv],
            {
              env,
              cwd: opts.cwd,
              stdio: ["pipe", "pipe", "pipe"],
            },
          );
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let interrupted = false;
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => {
      err.push(c);
      const int = opts.interrupt;
      if (int && !interrupted && int.when.test(Buffer.concat(err).toString("utf8"))) {
        interrupted = true;
        setTimeout(() => {
          int.before?.();
          child.kill(int.signal);
        }, int.afterMs ?? 0);
      }
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString("utf8");
      const result = {
        code: timedOut ? 124 : (code ?? (signal ? 128 : -1)),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: timedOut ? `${stderr}\n[runWile: killed after ${timeoutMs} ms]` : stderr,
        timedOut,
        ms: Date.now() - started,
        interrupted,
      };
      auditRun(args, env, result);
      resolvePromise(result);
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** A readable dump of a run, for assertion messages. */
/** Set by startTestEnv: the CA's log, quoted by dump() when a run timed out. */
export const diagnostics: { pebbleLog?: string } = {};

export function dump(r: RunResult): string {
  const text = `exit ${r.code}${r.timedOut ? " (timed out)" : ""}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
  if (!r.timedOut || !diagnostics.pebbleLog || !existsSync(diagnostics.pebbleLog)) return text;
  // A run that hangs: what the CA did last says which request it was waiting for.
  const tail = readFileSync(diagnostics.pebbleLog, "utf8").trimEnd().split("\n").slice(-40).join("\n");
  return `${text}\n--- last lines of ${diagnostics.pebbleLog} ---\n${tail}`;
}
