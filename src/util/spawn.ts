import { spawn } from "node:child_process";
import { onInterrupt } from "./interrupt";
import { printable } from "./text";

/**
 * Running other programs: argv arrays without a shell (`run`), or a command string the user wrote
 * (`runShell`, `sh -c`). Every run has a timeout; on it the whole process group gets SIGTERM, then
 * SIGKILL 2 s later, so a hook's children do not outlive it. stdout and stderr are each kept up to
 * `maxOutputBytes` (1 MiB) and drained beyond that, so a chatty child never blocks. The child runs
 * in its own process group, so a Ctrl-C or kill aimed at wile does not reach it: when wile is
 * interrupted, the group gets SIGTERM from here (an interrupted deploy leaves no ssh or hook behind).
 */
export interface RunOptions {
  timeoutMs: number;
  /** The child's whole environment (default: this process's). */
  env?: Record<string, string | undefined>;
  /** Text written to stdin, which is then closed (default: stdin closed at once). */
  input?: string;
  cwd?: string;
  /** Per stream; default 1 MiB. */
  maxOutputBytes?: number;
}

export interface RunResult {
  /** The exit code, or null when the child died of a signal. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** The child was killed because it ran past timeoutMs. */
  timedOut: boolean;
  /** The child was stopped because wile was interrupted (only set then). */
  interrupted?: true;
}

export const MAX_OUTPUT_BYTES = 1024 * 1024;
const KILL_GRACE_MS = 2000;
/** After the child exits, how long to wait for pipes held open by a grandchild (a daemon it started). */
const PIPE_GRACE_MS = 1000;

/**
 * Runs argv[0] (looked up in PATH) with the other elements as its arguments. Rejects only when the
 * program cannot be started (the error carries `code`, e.g. "ENOENT"); a non-zero exit resolves.
 */
export function run(argv: string[], opts: RunOptions): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error("run: empty argv"));
  const cap = opts.maxOutputBytes ?? MAX_OUTPUT_BYTES;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: (opts.env ?? process.env) as NodeJS.ProcessEnv,
      stdio: ["pipe", "pipe", "pipe"],
      // Its own process group, so that a timeout can kill everything it started.
      detached: true,
    });
    const out = collector(cap);
    const err = collector(cap);
    let timedOut = false;
    let interrupted = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let pipeTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: string | null } | undefined;

    const killGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
      }
    };
    const unregister = onInterrupt(async () => {
      interrupted = true;
      killGroup("SIGTERM");
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
    }, opts.timeoutMs);

    const finish = () => {
      if (settled || !exit) return;
      settled = true;
      unregister();
      clearTimeout(timer);
      clearTimeout(killTimer);
      clearTimeout(pipeTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        ...exit,
        stdout: out.text(),
        stderr: err.text(),
        timedOut,
        ...(interrupted ? { interrupted: true as const } : {}),
      });
    };

    child.stdout?.on("data", out.add);
    child.stderr?.on("data", err.add);
    child.stdin?.on("error", () => {
      // The child did not read its stdin (EPIPE): not our problem.
    });
    child.on("error", (e) => {
      if (settled) return;
      if (child.pid === undefined) {
        settled = true;
        unregister();
        clearTimeout(timer);
        reject(e);
      }
    });
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      if (timedOut) {
        // Make sure the rest of the group goes too.
        killGroup("SIGKILL");
      }
      pipeTimer = setTimeout(finish, PIPE_GRACE_MS);
    });
    child.on("close", finish);
    if (child.stdin) child.stdin.end(opts.input ?? "");
  });
}

/** `sh -c command`, for hook strings the user wrote (--reload-cmd, notifyCmd). */
export function runShell(command: string, opts: RunOptions): Promise<RunResult> {
  return run(["/bin/sh", "-c", command], opts);
}

/** A one-line description of how a run ended, e.g. "exit 3", "killed by SIGKILL", "timed out after 60 s". */
export function describeExit(r: RunResult, timeoutMs?: number): string {
  if (r.interrupted) return "stopped: wile was interrupted";
  if (r.timedOut)
    return timeoutMs === undefined ? "timed out" : `timed out after ${Math.round(timeoutMs / 1000)} s`;
  if (r.code !== null) return `exit ${r.code}`;
  return `killed by ${r.signal ?? "a signal"}`;
}

/**
 * The last `lines` non-blank lines of a run's output (stderr first, then stdout) on one printable
 * line joined by " | ", at most `max` characters: what a failure message quotes.
 */
export function lastLines(r: { stdout: string; stderr: string }, lines = 5, max = 400): string {
  const all = `${r.stderr}\n${r.stdout}`.split(/\r?\n/).filter((l) => l.trim() !== "");
  return printable(all.slice(-lines).join(" | "), max);
}

function collector(cap: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    add: (chunk: Buffer) => {
      if (size >= cap) return;
      const take = chunk.length <= cap - size ? chunk : chunk.subarray(0, cap - size);
      chunks.push(take);
      size += take.length;
    },
    text: () => Buffer.concat(chunks).toString("utf8"),
  };
}
