import { randomInt } from "node:crypto";
import { basename, resolve } from "node:path";
import { UsageError, WileError } from "../util/errors";
import { run } from "../util/spawn";

/**
 * wile's line in the user's own crontab (edited only through `crontab -l` / `crontab -`, so it is
 * always the invoking user's crontab, never a system file):
 *
 *   17 4,16 * * * /usr/bin/node /opt/wile/wile.cjs cron --home /home/me/.wile # wile:/home/me/.wile
 *
 * - twice a day, at a random minute and a random pair of hours 12 h apart (spreads the load on the
 *   CA; the pair is kept in config.json so reinstalling keeps the time);
 * - absolute paths only (cron's PATH is /usr/bin:/bin): node + the bundle, or the standalone
 *   binary alone; `--home` explicit, so the line does not depend on cron's environment;
 * - no output redirection: `wile cron` writes everything to <home>/logs/wile.log itself, prints
 *   nothing on stdout when all is well and its failures on stderr, so cron mails exactly the
 *   failures (MAILTO) and stays quiet otherwise;
 * - the trailing comment `# wile:<home>` marks the line as wile's for that home (several homes can
 *   have a line each); everything else in the crontab is kept byte for byte.
 */

export interface Schedule {
  minute: number;
  hours: [number, number];
}

export const MARKER_PREFIX = "# wile:";

/** A random minute, and a random hour with its partner 12 h later. */
export function randomSchedule(): Schedule {
  const h = randomInt(0, 12);
  return { minute: randomInt(0, 60), hours: [h, h + 12] };
}

/** "17 4,16 * * *" */
export function scheduleFields(s: Schedule): string {
  return `${s.minute} ${s.hours[0]},${s.hours[1]} * * *`;
}

/** The schedule of a line that wile wrote ("M H1,H2 * * * ..."), or undefined. */
export function parseSchedule(line: string): Schedule | undefined {
  const m = /^\s*(\d{1,2})\s+(\d{1,2}),(\d{1,2})\s+\*\s+\*\s+\*\s/.exec(line);
  if (!m) return undefined;
  const [minute, h1, h2] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (minute > 59 || h1 > 23 || h2 > 23) return undefined;
  return { minute, hours: [h1, h2] };
}

/**
 * How to start this wile from cron, as an argv: the standalone binary alone, or
 * `<node> <bundle>` when running as `node dist/wile.cjs`. Both absolute.
 */
export function programArgv(p: { execPath: string; argv1: string | undefined; isSea: boolean }): string[] {
  const execPath = resolve(p.execPath);
  if (p.isSea || p.argv1 === undefined || resolve(p.argv1) === execPath) return [execPath];
  const script = resolve(p.argv1);
  if (/\.(ts|mts|cts)$/.test(script)) {
    throw new WileError(
      `install-cron must be run from the built program, not from the source (${basename(script)})`,
      {
        hint: "Build it (npm run build) and run: node dist/wile.cjs install-cron",
      },
    );
  }
  return [execPath, script];
}

/** The running program, as programArgv() sees it. */
export function currentProgram(): string[] {
  return programArgv({ execPath: process.execPath, argv1: process.argv[1], isSea: isSea() });
}

function isSea(): boolean {
  try {
    // In the CommonJS bundle and in a SEA, `require` loads built-ins; node:sea exists from Node 20.12.
    const req = typeof require === "function" ? require : undefined;
    const sea = req?.("node:sea") as { isSea?: () => boolean } | undefined;
    if (typeof sea?.isSea === "function") return sea.isSea();
  } catch {
    // older Node or ESM (tests): fall back to the argv test in programArgv
  }
  return false;
}

/** Quotes one word for sh: bare when it is plainly safe, else in single quotes. */
export function shQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** cron turns an unescaped % into a newline; a backslash before it keeps it (and is removed). */
function cronEscape(text: string): string {
  return text.replace(/%/g, "\\%");
}

/** Rejects text that cannot sit on one crontab line. */
export function checkLineSafe(what: string, text: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\x00-\x1f\x7f]/.test(text)) {
    throw new UsageError(
      `${what} contains a control character (newline, tab, ...): it cannot go into a crontab line`,
      {
        hint: "Use a path without such characters (--home DIR).",
      },
    );
  }
}

/** The marker comment that identifies wile's line for `home`. */
export function marker(home: string): string {
  return cronEscape(`${MARKER_PREFIX}${home}`);
}

/** The whole crontab line (without newline). */
export function cronLine(schedule: Schedule, program: string[], home: string): string {
  checkLineSafe("the state directory", home);
  for (const p of program) checkLineSafe("the path of the wile program", p);
  const command = [...program, "cron", "--home", home].map(shQuote).join(" ");
  return `${scheduleFields(schedule)} ${cronEscape(command)} ${marker(home)}`;
}

/** The command part of a line (after the five time fields), as cron hands it to sh -c. */
export function commandOf(line: string): string {
  const m = /^\s*(?:\S+\s+){5}(.*)$/.exec(line);
  return (m?.[1] ?? "").replace(/\\%/g, "%");
}

/** The crontab split into lines that keep their own "\n" (the last may have none). */
function segments(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function content(segment: string): string {
  return segment.endsWith("\n") ? segment.slice(0, -1) : segment;
}

/** True for an active (not commented-out) line that carries wile's marker for `home`. */
export function isWileLine(line: string, home: string): boolean {
  const l = line.replace(/\r$/, "").trimEnd();
  if (l.trimStart().startsWith("#")) return false;
  return l.endsWith(` ${marker(home)}`);
}

/** wile's lines for `home` in a crontab text. */
export function findWileLines(text: string, home: string): string[] {
  return segments(text)
    .map(content)
    .filter((l) => isWileLine(l, home));
}

/**
 * Puts `line` into the crontab text as wile's line for `home`: replaces the first existing one in
 * place (and drops duplicates), or appends it. Every other byte stays as it was, except a final
 * newline added before an appended line (crontab refuses a file without one).
 */
export function upsertLine(
  text: string,
  home: string,
  line: string,
): { text: string; status: "added" | "replaced" | "unchanged" } {
  const segs = segments(text);
  const mine = segs.map((s, i) => (isWileLine(content(s), home) ? i : -1)).filter((i) => i >= 0);
  if (mine.length === 0) {
    const sep = text === "" || text.endsWith("\n") ? "" : "\n";
    return { text: `${text}${sep}${line}\n`, status: "added" };
  }
  const first = mine[0] as number;
  if (mine.length === 1 && segs[first] === `${line}\n`) return { text, status: "unchanged" };
  const out: string[] = [];
  segs.forEach((s, i) => {
    if (i === first) out.push(`${line}\n`);
    else if (!mine.includes(i)) out.push(s);
  });
  return { text: out.join(""), status: "replaced" };
}

/** Removes wile's line(s) for `home`; every other byte stays as it was. */
export function removeLines(text: string, home: string): { text: string; removed: string[] } {
  const removed: string[] = [];
  const kept = segments(text).filter((s) => {
    if (!isWileLine(content(s), home)) return true;
    removed.push(content(s));
    return false;
  });
  return { text: kept.join(""), removed };
}

/** No `crontab` program: the caller offers --systemd. */
export class CrontabMissingError extends WileError {}

const CRONTAB_TIMEOUT_MS = 30_000;

/** The user's crontab ("" when there is none). */
export async function readCrontab(env?: Record<string, string | undefined>): Promise<string> {
  const r = await crontab(["-l"], undefined, env);
  if (r.code === 0) return r.stdout;
  if (r.code === 1 && /no crontab for/i.test(r.stderr)) return "";
  throw crontabFailed("crontab -l", r);
}

/** Replaces the user's crontab with `text`. */
export async function writeCrontab(text: string, env?: Record<string, string | undefined>): Promise<void> {
  // crontab refuses a file whose last line has no newline.
  const input = text === "" || text.endsWith("\n") ? text : `${text}\n`;
  const r = await crontab(["-"], input, env);
  if (r.code !== 0) throw crontabFailed("crontab -", r);
}

async function crontab(args: string[], input: string | undefined, env?: Record<string, string | undefined>) {
  try {
    return await run(["crontab", ...args], {
      timeoutMs: CRONTAB_TIMEOUT_MS,
      ...(input === undefined ? {} : { input }),
      ...(env ? { env } : {}),
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new CrontabMissingError("there is no crontab program on this system (cron is not installed)", {
        hint: "Install cron (Debian/Ubuntu: apt-get install cron), or use a systemd user timer instead: wile install-cron --systemd",
      });
    }
    throw e;
  }
}

function crontabFailed(
  what: string,
  r: { code: number | null; stderr: string; timedOut: boolean },
): WileError {
  const why = r.timedOut ? "timed out" : `exit ${r.code ?? "signal"}`;
  const detail = r.stderr.trim().split("\n").slice(0, 3).join(" / ");
  const denied = /not allowed|permission denied/i.test(r.stderr);
  return new WileError(`${what} failed (${why})${detail ? `: ${detail}` : ""}`, {
    hint: denied
      ? "Your user may not use cron (see /etc/cron.allow and /etc/cron.deny); ask the administrator, or use: wile install-cron --systemd"
      : "Check that cron works for your user (crontab -l), or use: wile install-cron --systemd",
  });
}

/**
 * Debian's cron writes /run/crond.pid; without it the line would sit there unused. Only a hint:
 * other cron implementations keep their pid elsewhere.
 */
export function cronDaemonLooksStopped(exists: (p: string) => boolean): boolean {
  const pids = ["/run/crond.pid", "/var/run/crond.pid", "/run/cron.pid", "/var/run/cron.pid"];
  return !pids.some(exists);
}
