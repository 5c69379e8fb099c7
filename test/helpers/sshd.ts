/**
 * A throwaway OpenSSH server on 127.0.0.1 and a free port, for the ssh and exchange deploy tests.
 *
 * `/usr/sbin/sshd -D -e -f <tmp>/sshd_config` runs with its own ed25519 host key, pid file and
 * authorized_keys file in a fresh temp dir (StrictModes no, PasswordAuthentication no, UsePAM no,
 * scp/sftp through internal-sftp), and lets in one local test user (created with `useradd -m` when
 * missing, default `wile-ssh-test`) with a client key made here. The client side gets a
 * known_hosts file holding the server's host key for `[127.0.0.1]:port`, so tests run ssh in
 * batch mode with host key checking on, as an operator would.
 *
 * sshd must run as root (it switches to the test user per session). Missing openssh-server or
 * openssh-client are installed when running as root (scripts/debian-packages.sh); when that is not
 * possible startSshd() rejects with an Error naming the packages, never a skip (under CI=true too).
 */
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, tail } from "./testenv";
import { repoRoot } from "./wile";

export interface Sshd {
  port: number;
  /** The local user the server lets in with identityFile. */
  user: string;
  /** That user's home directory (from getent passwd). */
  userHome: string;
  /** The client's ed25519 private key (0600, owned by the user running the tests). */
  identityFile: string;
  /** The client's public key (its line is in the server's authorized_keys). */
  publicKeyFile: string;
  /** known_hosts with the server's host key for [127.0.0.1]:port. */
  knownHostsFile: string;
  /** The server's host public key line (`ssh-ed25519 AAAA...`). */
  hostPublicKey: string;
  /**
   * Options for `ssh` (not scp: scp spells the port -P): -p port, -i identity, UserKnownHostsFile,
   * GlobalKnownHostsFile=/dev/null, BatchMode=yes, IdentitiesOnly=yes. Use as
   * `ssh ...sshArgs user@127.0.0.1 cmd`.
   */
  sshArgs: string[];
  /** The same for `scp` (-P port). */
  scpArgs: string[];
  /** The temp dir holding config, keys and the log. */
  tmp: string;
  /** sshd's log (its stderr, -e), for assertion messages. */
  logFile: string;
  /** "user@127.0.0.1:dir" */
  target(dir: string): string;
  /** Runs `ssh ...sshArgs user@127.0.0.1 command` (synchronously), for test setup and checks. */
  exec(command: string): { code: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** The test user (default wile-ssh-test); created with useradd -m when missing. */
  user?: string;
  /** Extra sshd_config lines, e.g. ["SetEnv PATH=/home/u/bin:/usr/bin:/bin"]. */
  extraConfig?: string[];
}

export const SSHD = "/usr/sbin/sshd";
export const DEFAULT_SSH_TEST_USER = "wile-ssh-test";

/** Installs openssh-server/openssh-client when missing (root only), else throws naming them. */
export function ensureOpenSsh(): void {
  const missing = [
    existsSync(SSHD) ? null : "openssh-server",
    which("ssh") && which("scp") && which("ssh-keygen") ? null : "openssh-client",
  ].filter((p): p is string => p !== null);
  if (missing.length === 0) return;
  const hint = `install the Debian packages ${missing.join(" ")} (apt-get install ${missing.join(" ")}), or run scripts/test.sh as root`;
  if (process.getuid?.() !== 0) throw new Error(`OpenSSH is missing and this is not root: ${hint}`);
  const r = spawnSync(
    "bash",
    ["-c", '. scripts/debian-packages.sh && ensure_debian_packages "$@"', "bash", ...missing],
    { cwd: repoRoot, encoding: "utf8", timeout: 600_000 },
  );
  if (r.status !== 0 || !existsSync(SSHD) || !which("ssh")) {
    throw new Error(
      `could not install ${missing.join(" ")}: ${(r.stderr || r.stdout || "").trim()}; ${hint}`,
    );
  }
}

function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":").concat(["/usr/bin", "/bin"])) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function sh(argv: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0] as string, argv.slice(1), {
    encoding: "utf8",
    input,
    timeout: 30_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function passwdEntry(user: string): { uid: number; gid: number; home: string } | undefined {
  const r = sh(["getent", "passwd", user]);
  if (r.code !== 0) return undefined;
  const f = r.stdout.trim().split(":");
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "" };
}

/**
 * The test user, created when missing. Its password field is set to `*` (no password, but not
 * "locked"): with UsePAM no, sshd refuses every login of an account whose shadow entry starts
 * with `!`, as useradd leaves it.
 */
export function ensureTestUser(user = DEFAULT_SSH_TEST_USER): { uid: number; gid: number; home: string } {
  for (let attempt = 0; attempt < 10; attempt++) {
    const entry = passwdEntry(user);
    if (entry) {
      unlockIfLocked(user);
      return entry;
    }
    // Another test process may be adding it at the same moment (passwd lock): retry.
    const r = sh(["useradd", "-m", "-s", "/bin/sh", user]);
    if (r.code !== 0 && attempt === 9) throw new Error(`useradd -m ${user} failed: ${r.stderr.trim()}`);
    if (r.code !== 0) spawnSync("sleep", ["0.3"]);
  }
  throw new Error(`could not create the user ${user}`);
}

function unlockIfLocked(user: string): void {
  let shadow = "";
  try {
    shadow = readFileSync("/etc/shadow", "utf8");
  } catch {
    return;
  }
  const line = shadow.split("\n").find((l) => l.startsWith(`${user}:`));
  const pw = line?.split(":")[1] ?? "";
  if (pw.startsWith("!")) sh(["usermod", "-p", "*", user]);
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  ensureOpenSsh();
  if (process.getuid?.() !== 0) {
    throw new Error("startSshd needs root (sshd switches to the test user): run the tests as root");
  }
  const user = opts.user ?? DEFAULT_SSH_TEST_USER;
  const account = ensureTestUser(user);
  // The privilege separation directory Debian's sshd expects (normally made by its systemd unit).
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

  const tmp = mkdtempSync(join(tmpdir(), "wile-sshd-"));
  // sshd reads authorized_keys as the user: the dir must be traversable, the file readable.
  chmodSync(tmp, 0o755);
  const hostKey = join(tmp, "ssh_host_ed25519_key");
  const identityFile = join(tmp, "client_ed25519");
  for (const [file, comment] of [
    [hostKey, "wile-test-host"],
    [identityFile, "wile-test-client"],
  ] as const) {
    const r = sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
    if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  }
  chmodSync(identityFile, 0o600);
  const authorizedKeys = join(tmp, "authorized_keys");
  writeFileSync(authorizedKeys, readFileSync(`${identityFile}.pub`, "utf8"), { mode: 0o644 });
  chmodSync(authorizedKeys, 0o644);
  const hostPublicKey = readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  const knownHostsFile = join(tmp, "known_hosts");
  const pidFile = join(tmp, "sshd.pid");
  const logFile = join(tmp, "sshd.log");
  const config = join(tmp, "sshd_config");

  let lastErr: Error | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    writeFileSync(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey}`,
        `PidFile ${pidFile}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        `AllowUsers ${user}`,
        "PermitRootLogin no",
        "X11Forwarding no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        ...(opts.extraConfig ?? []),
        "",
      ].join("\n"),
    );
    writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const check = sh([SSHD, "-t", "-f", config]);
    if (check.code !== 0) throw new Error(`sshd -t rejected ${config}: ${check.stderr.trim()}`);
    writeFileSync(logFile, "");
    const out = openSync(logFile, "a");
    const child = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", out, out] });
    closeSync(out);
    let exited = false;
    const exitedP = new Promise<void>((resolve) => {
      child.on("exit", () => {
        exited = true;
        resolve();
      });
      child.on("error", () => {
        exited = true;
        resolve();
      });
    });
    const killOnExit = () => child.kill("SIGKILL");
    process.on("exit", killOnExit);
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      if (/Server listening on 127\.0\.0\.1 port/.test(readFileSync(logFile, "utf8"))) {
        ready = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (ready) {
      const sshArgs = [
        "-p",
        String(port),
        "-i",
        identityFile,
        "-o",
        `UserKnownHostsFile=${knownHostsFile}`,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
      ];
      const scpArgs = ["-P", ...sshArgs.slice(1)];
      return {
        port,
        user,
        userHome: account.home,
        identityFile,
        publicKeyFile: `${identityFile}.pub`,
        knownHostsFile,
        hostPublicKey,
        sshArgs,
        scpArgs,
        tmp,
        logFile,
        target: (dir: string) => `${user}@127.0.0.1:${dir}`,
        exec: (command: string) => sh(["ssh", ...sshArgs, `${user}@127.0.0.1`, command]),
        stop: async () => {
          if (!exited) {
            child.kill("SIGTERM");
            const t = setTimeout(() => child.kill("SIGKILL"), 3000);
            await exitedP;
            clearTimeout(t);
          }
          process.off("exit", killOnExit);
          if (!process.env.WILE_KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
        },
      };
    }
    child.kill("SIGKILL");
    await exitedP;
    process.off("exit", killOnExit);
    const log = tail(logFile);
    lastErr = new Error(`sshd did not start on 127.0.0.1:${port}:\n${log}`);
    if (!/Address already in use|Cannot bind/i.test(log)) break;
  }
  rmSync(tmp, { recursive: true, force: true });
  throw lastErr ?? new Error("sshd did not start");
}
