import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { UsageError } from "../util/errors";
import { currentUser } from "./file-errors";

/**
 * Where wile keeps its state (`--home`, else `$WILE_HOME`, else `~/.wile`):
 * ```
 * <home>/
 *   accounts/<ca-host_port>/<account>/account.json, account.key (0600)
 *   certs/<name>/renewal.json                       every setting used at issue time
 *   certs/<name>/privkey.pem cert.pem chain.pem fullchain.pem   stable paths (symlinks into current/)
 *   certs/<name>/current -> archive/<UTC stamp>     switched atomically
 *   certs/<name>/archive/<UTC stamp>/               one complete version per issuance (a few kept)
 *   logs/wile.log
 *   cron-index.json                                 what the last cron found (a cache: store/cron-index.ts)
 *   cache/wile-<hash>.js, wile-<hash>-<node>-<arch>-<command>.v8   the unpacked program and V8's
 *                                                   code cache, kept by dist/wile.cjs's loader
 *                                                   (scripts/lib/bundle.mjs); safe to delete
 * ```
 * Directories are 0700, private keys 0600 whatever the umask.
 */
export interface HomeLayout {
  home: string;
  accounts: string;
  certs: string;
  logs: string;
}

/** The state directory: --home, else WILE_HOME, else `<HOME or os.homedir()>/.wile`; always absolute. */
export function resolveHome(option: string | undefined, env: Record<string, string | undefined>): string {
  if (option) return resolve(option);
  if (env.WILE_HOME) return resolve(env.WILE_HOME);
  const base = env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir();
  return resolve(base, ".wile");
}

/**
 * Checks the home before a command uses it, so that a wrong --home, WILE_HOME or HOME is a usage
 * error naming it (exit 2) rather than an errno half way through: it must be a directory (or not
 * exist yet), and with `write` this user must be able to write it (or create it: then its nearest
 * existing parent must be a writable directory).
 */
export async function checkHome(home: string, opts: { write: boolean }): Promise<void> {
  const where = "the state directory (--home, else WILE_HOME, else $HOME/.wile)";
  const hint = (fix: string) => `${fix} Or pass another --home (or set WILE_HOME).`;
  let dir = home;
  for (;;) {
    const st = await stat(dir).catch((e: NodeJS.ErrnoException) =>
      e.code === "ENOENT" || e.code === "ENOTDIR" ? null : e,
    );
    if (st instanceof Error) {
      throw new UsageError(`Cannot use ${home} as ${where}: ${dir}: ${st.message}.`, {
        hint: hint(`Fix the permissions of ${dir} for user ${currentUser()}.`),
      });
    }
    if (st && !st.isDirectory()) {
      throw new UsageError(`Cannot use ${home} as ${where}: ${dir} is a file, not a directory.`, {
        hint: hint(`Move ${dir} away (wile then creates the directory).`),
      });
    }
    if (st) break;
    if (dirname(dir) === dir) return;
    dir = dirname(dir);
  }
  if (!opts.write) return;
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch {
    const user = currentUser();
    const what =
      dir === home ? `${home} is not writable` : `${home} does not exist and ${dir} is not writable`;
    throw new UsageError(`Cannot use ${home} as ${where}: ${what} by user ${user}.`, {
      hint: hint(
        dir === home
          ? `Make it writable (e.g. chown -R ${user} ${home}).`
          : `Create it for ${user} (mkdir -p ${home} && chown ${user} ${home}).`,
      ),
    });
  }
}

export function homeLayout(home: string): HomeLayout {
  return { home, accounts: join(home, "accounts"), certs: join(home, "certs"), logs: join(home, "logs") };
}

/** "<host>_<port>" for a directory URL, default port filled in, e.g. "acme-v02.api.letsencrypt.org_443". */
export function caDirName(directoryUrl: string): string {
  let url: URL;
  try {
    url = new URL(directoryUrl);
  } catch {
    throw new UsageError(`Not a valid ACME directory URL: ${directoryUrl}`, {
      hint: "Pass --server as a full URL such as https://acme-v02.api.letsencrypt.org/directory.",
    });
  }
  const port = url.port || (url.protocol === "http:" ? "80" : "443");
  // IPv6 hosts come in brackets with colons; keep only characters that are safe in a file name.
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/[^A-Za-z0-9.-]/g, "-");
  return `${host}_${port}`;
}

/**
 * The directory name of a certificate: its first name, "*." written as "_." (lego's convention:
 * certs/_.example.com/; no -d name can start with "_", so it stands for no other name).
 */
export function certName(firstIdentifierValue: string): string {
  const name = firstIdentifierValue.replace(/^\*\./, "_.");
  if (!isSafeComponent(name)) {
    throw new UsageError(`Cannot use "${firstIdentifierValue}" as a certificate name.`, {
      hint: "A certificate name must be a single path component: no '/', '\\', NUL, and not '.' or '..'.",
    });
  }
  if (name.length > MAX_CERT_NAME) {
    throw new UsageError(
      `Cannot use the ${name.length}-character name ${firstIdentifierValue} as a certificate name: the files wile keeps next to its directory (certs/<name>.lock and its temporary files) would pass the file system's limit of 255 bytes per name.`,
      {
        hint: `The first -d names the certificate: give a name of at most ${MAX_CERT_NAME} characters first; the long one can follow as another -d.`,
      },
    );
  }
  return name;
}

/**
 * Longest certificate name: `.<name>.lock.takeover.tmp-<12 hex>` (the lock's takeover guard's
 * temporary file, the longest name derived from it) must stay within NAME_MAX, 255 bytes.
 */
export const MAX_CERT_NAME = 200;

/** True for a non-empty single path component. */
export function isSafeComponent(name: string): boolean {
  return (
    name.length > 0 &&
    name !== "." &&
    name !== ".." &&
    !name.includes("/") &&
    !name.includes("\\") &&
    !name.includes("\0")
  );
}
