import { createHash } from "node:crypto";
import { unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { ensureDir, readFileIfExists, writeFileAtomic } from "../store/fs-safe";
import { resolveHome } from "../store/paths";
import { run } from "../util/spawn";
import { checkLineSafe, type Schedule } from "./crontab";

/**
 * The alternative to a crontab line where there is no cron: a systemd user timer,
 * `~/.config/systemd/user/wile.service` + `wile.timer` (`wile-<hash>.*` for a home other than the
 * default one, so several homes can coexist). The timer fires twice a day at the schedule
 * install-cron chose, plus up to RandomizedDelaySec, and catches up after downtime (Persistent).
 * Output goes to the user journal (`journalctl --user -u wile`); wile's own log is in the home.
 */

export interface UnitFiles {
  /** "wile" or "wile-<8 hex>". */
  name: string;
  dir: string;
  servicePath: string;
  timerPath: string;
  service: string;
  timer: string;
}

export const RANDOMIZED_DELAY = "15min";

/** `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`. */
export function unitDir(env: Record<string, string | undefined>): string {
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "systemd", "user");
  const home = env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir();
  return join(home, ".config", "systemd", "user");
}

/** "wile" for the default home, "wile-<first 8 hex of sha256(home)>" for any other. */
export function unitName(home: string, env: Record<string, string | undefined>): string {
  const defaultHome = resolveHome(undefined, { ...env, WILE_HOME: undefined });
  if (home === defaultHome) return "wile";
  return `wile-${createHash("sha256").update(home).digest("hex").slice(0, 8)}`;
}

/** One ExecStart word: double-quoted, with systemd's specifiers (%) and variables ($) escaped. */
export function systemdQuote(word: string): string {
  const escaped = word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%").replace(/\$/g, "$$$$");
  return /^[A-Za-z0-9_@+=:,./-]+$/.test(word) ? word : `"${escaped}"`;
}

export function unitFiles(
  schedule: Schedule,
  program: string[],
  home: string,
  env: Record<string, string | undefined>,
): UnitFiles {
  checkLineSafe("the state directory", home);
  for (const p of program) checkLineSafe("the path of the wile program", p);
  const name = unitName(home, env);
  const dir = unitDir(env);
  const exec = [...program, "cron", "--home", home].map(systemdQuote).join(" ");
  const hh = schedule.hours.map((h) => String(h).padStart(2, "0")).join(",");
  const mm = String(schedule.minute).padStart(2, "0");
  const service = [
    "# Written by wile install-cron --systemd; removed by wile uninstall-cron --systemd.",
    "[Unit]",
    `Description=wile: renew the certificates in ${home.replace(/%/g, "%%")}`,
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    `ExecStart=${exec}`,
    "",
  ].join("\n");
  const timer = [
    "# Written by wile install-cron --systemd; removed by wile uninstall-cron --systemd.",
    "[Unit]",
    `Description=wile: renew certificates twice a day (${name}.service)`,
    "",
    "[Timer]",
    `OnCalendar=*-*-* ${hh}:${mm}:00`,
    `RandomizedDelaySec=${RANDOMIZED_DELAY}`,
    "Persistent=true",
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
  ].join("\n");
  return {
    name,
    dir,
    servicePath: join(dir, `${name}.service`),
    timerPath: join(dir, `${name}.timer`),
    service,
    timer,
  };
}

/** What to run by hand when systemctl cannot be reached from here. */
export function enableCommands(name: string): string[] {
  return ["systemctl --user daemon-reload", `systemctl --user enable --now ${name}.timer`];
}

export function disableCommands(name: string): string[] {
  return [`systemctl --user disable --now ${name}.timer`, "systemctl --user daemon-reload"];
}

/**
 * Writes the unit files (unchanged files are not rewritten) and tries to enable the timer.
 * Returns whether anything changed and whether systemctl did its part (else: print the commands).
 */
export async function installUnits(
  units: UnitFiles,
  env: Record<string, string | undefined>,
): Promise<{ changed: boolean; enabled: boolean; systemctlError?: string }> {
  await ensureDir(units.dir, 0o755);
  let changed = false;
  for (const [path, text] of [
    [units.servicePath, units.service],
    [units.timerPath, units.timer],
  ] as const) {
    if ((await readFileIfExists(path)) === text) continue;
    await writeFileAtomic(path, text, 0o644);
    changed = true;
  }
  const error = await systemctl([["daemon-reload"], ["enable", "--now", `${units.name}.timer`]], env);
  return error === undefined
    ? { changed, enabled: true }
    : { changed, enabled: false, systemctlError: error };
}

/** Stops and disables the timer (when systemctl works) and deletes both files. */
export async function removeUnits(
  units: Pick<UnitFiles, "name" | "servicePath" | "timerPath">,
  env: Record<string, string | undefined>,
): Promise<{ removed: string[]; disabled: boolean; systemctlError?: string }> {
  const present: string[] = [];
  for (const p of [units.timerPath, units.servicePath])
    if ((await readFileIfExists(p)) !== null) present.push(p);
  if (present.length === 0) return { removed: [], disabled: true };
  const disableError = await systemctl([["disable", "--now", `${units.name}.timer`]], env);
  for (const p of present) await unlink(p).catch(() => {});
  const reloadError = await systemctl([["daemon-reload"]], env);
  const error = disableError ?? reloadError;
  return error === undefined
    ? { removed: present, disabled: true }
    : { removed: present, disabled: false, systemctlError: error };
}

/** Runs `systemctl --user ...` steps in order; the first failure's message, or undefined. */
async function systemctl(
  steps: string[][],
  env: Record<string, string | undefined>,
): Promise<string | undefined> {
  for (const args of steps) {
    try {
      const r = await run(["systemctl", "--user", ...args], {
        timeoutMs: 30_000,
        env: { ...process.env, ...env },
      });
      if (r.code !== 0 || r.timedOut) {
        const detail = r.stderr.trim().split("\n")[0] ?? "";
        return `systemctl --user ${args.join(" ")}: ${r.timedOut ? "timed out" : `exit ${r.code}`}${detail ? ` (${detail})` : ""}`;
      }
    } catch (e) {
      return `systemctl: ${(e as Error).message}`;
    }
  }
  return undefined;
}
