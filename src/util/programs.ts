/**
 * Finding programs the way every deploy target must: in PATH, then in the sbin directories, since a
 * user's crontab runs with PATH=/usr/bin:/bin while nginx, doveadm, postfix and friends live in
 * /usr/sbin on Debian. Commands the operator wrote (`sh -c`) get the same directories appended to
 * their PATH (commandEnv), so what the check finds is what the shell runs.
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { WileError } from "./errors";

/** Searched after PATH. */
export const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

type Env = Record<string, string | undefined>;

/** PATH's directories followed by the sbin directories it lacks. */
export function searchPath(env: Env = process.env): string[] {
  const dirs = (env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  for (const d of SBIN_DIRS) if (!dirs.includes(d)) dirs.push(d);
  return dirs;
}

/** `env` with PATH = searchPath(env), for commands run with sh -c. */
export function commandEnv(env: Env = process.env): Env {
  return { ...env, PATH: searchPath(env).join(delimiter) };
}

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** The absolute path of `name` (or `name` itself when it holds a "/" and is executable); undefined when absent. */
export async function findProgram(name: string, env: Env = process.env): Promise<string | undefined> {
  if (name.includes("/")) return (await executable(name)) ? name : undefined;
  for (const dir of searchPath(env)) {
    const p = join(dir, name);
    if (await executable(p)) return p;
  }
  return undefined;
}

/** Shell syntax and builtins that start a command without naming a program to look for. */
const SHELL_WORDS = new Set(
  "true false : . [ test echo printf exec command eval set export cd if for while case until ! { ( exit return wait umask ulimit trap unset kill sleep".split(
    " ",
  ),
);

/**
 * For a command the operator wrote: when it starts with a plain program name (or path), that
 * program must exist where the command will run it (searchPath). Shell syntax and builtins are not
 * second-guessed. Throws WileError naming `what`.
 */
export async function checkCommandProgram(
  command: string,
  what: string,
  env: Env = process.env,
): Promise<void> {
  const first = command.trim().split(/\s+/)[0] ?? "";
  if (first === "" || SHELL_WORDS.has(first) || !/^[A-Za-z0-9_./+-]+$/.test(first)) return;
  if (await findProgram(first, env)) return;
  if (first.includes("/")) {
    throw new WileError(`${what}: ${first} does not exist or is not executable (in: ${command})`);
  }
  throw new WileError(
    `${what}: the program ${first} was not found in PATH or ${SBIN_DIRS.join(", ")} (in: ${command})`,
    { hint: "Install it, or write the command with the program's full path." },
  );
}
