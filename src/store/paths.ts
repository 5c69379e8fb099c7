import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { UsageError } from "../util/errors";

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

/** The directory name of a certificate: its first name, "*." written as "_wildcard_.". */
export function certName(firstIdentifierValue: string): string {
  const name = firstIdentifierValue.replace(/^\*\./, "_wildcard_.");
  if (!isSafeComponent(name)) {
    throw new UsageError(`Cannot use "${firstIdentifierValue}" as a certificate name.`, {
      hint: "A certificate name must be a single path component: no '/', '\\', NUL, and not '.' or '..'.",
    });
  }
  return name;
}

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
