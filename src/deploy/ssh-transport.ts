/**
 * The OpenSSH client side shared by the ssh and exchange targets: the checks of where and how to
 * log in (`[USER@]HOST`, port, identity, `-o` options), the argv of `ssh` and `scp`, the check that
 * they are installed, and running one step with a timeout, whose failure names the host and the
 * step the same way for both targets.
 *
 * Every ssh and scp gets, in this order:
 * - `-o BatchMode=yes`: never a password or passphrase prompt (renewals run from cron). ssh keeps
 *   the first value it gets for an option, so an operator's `-o BatchMode=no` cannot undo it.
 * - with an identity, `-i FILE -o IdentitiesOnly=yes`: that key only, not every key an ssh-agent
 *   holds (which can use up the server's MaxAuthTries before the right one is tried).
 * - the port (`-p` for ssh, `-P` for scp), then the operator's `-o` options in their order;
 * - `-o ConnectTimeout=20`, unless the operator gave a ConnectTimeout.
 * Host keys are checked as ssh does by default (known_hosts; in batch mode an unknown or changed
 * key fails the login). Nothing here turns StrictHostKeyChecking off: an operator who wants that
 * must say so with an `-o` option.
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { findProgram, SBIN_DIRS } from "../util/programs";
import { path, port, texts } from "../util/settings";
import { describeExit, lastLines, type RunResult, run } from "../util/spawn";
import { printable } from "../util/text";
import { DeployError } from "./target";

/** How to log in: the same for every host of a target. */
export interface SshAccess {
  port?: number;
  /** Absolute path of the private key (-i). */
  identity?: string;
  /** Each passed as -o. */
  options: string[];
}

/** Where to log in. */
export interface SshHost {
  user?: string;
  /** A host name, a Host alias from ~/.ssh/config, or an address (IPv6 without brackets). */
  host: string;
}

export const CONNECT_TIMEOUT_S = 20;

// A Windows user may be DOMAIN\user or user@domain (ssh splits USER@HOST at the last @).
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9._@\\-]*$/;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const IPV6_RE = /^[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?$/;
// Keyword=value or "Keyword value", as ssh -o reads it; no control characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const OPTION_RE = /^[A-Za-z][A-Za-z0-9]*(?:[ \t]*=[ \t]*|[ \t]+)[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$/;

function splitHost(spec: string): { user?: string; host: string; bracketed: boolean } {
  const at = spec.lastIndexOf("@");
  const raw = spec.slice(at + 1);
  const inner = /^\[(.*)\]$/.exec(raw)?.[1];
  return {
    ...(at >= 0 ? { user: spec.slice(0, at) } : {}),
    host: inner ?? raw,
    bracketed: inner !== undefined,
  };
}

/**
 * Why `[USER@]HOST` cannot be used, phrased to follow the value ("must not start with -"), or
 * undefined. HOST is a name or an address, an IPv6 address bare or in [brackets].
 */
export function sshHostProblem(spec: string): string | undefined {
  if (spec.startsWith("-")) return "must not start with - (ssh would read it as an option)";
  const { user, host, bracketed } = splitHost(spec);
  if (user === "") return "has an empty user name";
  if (user !== undefined && !USER_RE.test(user))
    return `has a bad user name "${printable(user, 50)}" (letters, digits and _ . - \\ @ only)`;
  const ok = bracketed || host.includes(":") ? IPV6_RE.test(host) : NAME_RE.test(host);
  if (!ok)
    return `has a bad host "${printable(host, 100)}" (a host name, Host alias or IP address; IPv6 may be in [brackets])`;
  return undefined;
}

/** `[USER@]HOST` read; throws Error with the reason. */
export function parseSshHost(spec: string): SshHost {
  const why = sshHostProblem(spec);
  if (why) throw new Error(`"${printable(spec, 100)}" ${why}`);
  const { user, host } = splitHost(spec);
  return { ...(user !== undefined ? { user } : {}), host };
}

/** Why `o` cannot be passed as `ssh -o o`, phrased to follow the value, or undefined. */
export function sshOptionProblem(o: string): string | undefined {
  return OPTION_RE.test(o)
    ? undefined
    : "is not an ssh option NAME=VALUE (as in ssh -o), e.g. UserKnownHostsFile=/etc/wile/known_hosts";
}

/**
 * The login settings, for a target's declaration (`flag`, `help` name them in its vocabulary): a
 * port, an identity (a path setting: made absolute on the command line, since renewals run from
 * cron in another directory; absolute in renewal.json) and `-o` options.
 */
export const sshAccessSettings = {
  port: (o: { flag: string; arg: string; help: string }) => port(o),
  identity: (o: { flag: string; help: string }) => path({ ...o, arg: "FILE" }),
  options: (o: { flag: string; help: string }) => texts({ ...o, arg: "OPT", check: sshOptionProblem }),
};

/** The options of `ssh` or `scp` (which spells the port -P), in the order described above. */
export function sshOptions(a: SshAccess, program: "ssh" | "scp"): string[] {
  const timeoutGiven = a.options.some((o) => /^ConnectTimeout[\s=]/i.test(o));
  return [
    "-o",
    "BatchMode=yes",
    ...(a.identity !== undefined ? ["-i", a.identity, "-o", "IdentitiesOnly=yes"] : []),
    ...(a.port !== undefined ? [program === "scp" ? "-P" : "-p", String(a.port)] : []),
    ...a.options.flatMap((o) => ["-o", o]),
    ...(timeoutGiven ? [] : ["-o", `ConnectTimeout=${CONNECT_TIMEOUT_S}`]),
  ];
}

/** argv of `ssh` running `command` (ssh passes its words to the remote user's shell) on `h`. */
export function sshArgv(a: SshAccess, h: SshHost, command: string[]): string[] {
  return [
    "ssh",
    ...sshOptions(a, "ssh"),
    "--",
    `${h.user !== undefined ? `${h.user}@` : ""}${h.host}`,
    ...command,
  ];
}

/** argv of `scp` copying `localFiles` to `remotePath` on `h` (an IPv6 address in brackets). */
export function scpArgv(a: SshAccess, localFiles: string[], h: SshHost, remotePath: string): string[] {
  const host = h.host.includes(":") ? `[${h.host}]` : h.host;
  // Not -q: it would hide ssh's own messages (host key, authentication) too.
  return [
    "scp",
    ...sshOptions(a, "scp"),
    "--",
    ...localFiles,
    `${h.user !== undefined ? `${h.user}@` : ""}${host}:${remotePath}`,
  ];
}

/**
 * Before anything is contacted: ssh and scp are installed, and the identity can be read.
 * `label` starts the messages ("ssh", "exchange"); `identityFlag` names the option in the hint.
 */
export async function checkSshClient(a: SshAccess, label: string, identityFlag: string): Promise<void> {
  for (const program of ["ssh", "scp"]) {
    if (!(await findProgram(program))) {
      throw new DeployError(
        `${label}: ${program} was not found (looked in PATH and ${SBIN_DIRS.join(", ")})`,
        {
          hint: "Install the OpenSSH client (Debian/Ubuntu: apt-get install openssh-client).",
        },
      );
    }
  }
  if (a.identity !== undefined) {
    try {
      await access(a.identity, constants.R_OK);
    } catch (err) {
      throw new DeployError(
        `${label}: cannot read the identity file ${a.identity}: ${(err as NodeJS.ErrnoException).code}`,
        {
          hint: `Give with ${identityFlag} a private key this user can read (mode 0600, owned by the user running wile).`,
        },
      );
    }
  }
}

/** One ssh or scp run for a host. */
export interface SshStep {
  /** What it does, for messages: "copying the files (scp)". */
  what: string;
  argv: string[];
  timeoutMs: number;
  /** Text for its stdin. */
  input?: string;
}

/** Runs `step` for the host named `label`; only a program that cannot be started throws (DeployError). */
export async function runSshStep(label: string, step: SshStep): Promise<RunResult> {
  try {
    return await run(step.argv, {
      timeoutMs: step.timeoutMs,
      ...(step.input !== undefined ? { input: step.input } : {}),
    });
  } catch (err) {
    throw new DeployError(`${label}: ${step.what}: cannot run ${step.argv[0]}: ${(err as Error).message}`);
  }
}

/** `LABEL: STEP failed (exit 255) (ssh could not connect or log in): <its last lines of output>`. */
export function sshStepError(label: string, step: SshStep, r: RunResult, hint?: string): DeployError {
  const output = lastLines(r);
  // ssh and scp exit 255 for ssh's own errors (connection, authentication, host key).
  const side = r.code === 255 && !r.interrupted ? " (ssh could not connect or log in)" : "";
  return new DeployError(
    `${label}: ${step.what} failed (${describeExit(r, step.timeoutMs)})${side}${output ? `: ${output}` : ""}`,
    hint !== undefined ? { hint } : {},
  );
}

/** runSshStep; a failure (an exit other than 0, a timeout) throws sshStepError. */
export async function sshStep(label: string, step: SshStep, hint?: string): Promise<RunResult> {
  const r = await runSshStep(label, step);
  if (r.code !== 0 || r.timedOut) throw sshStepError(label, step, r, hint);
  return r;
}
