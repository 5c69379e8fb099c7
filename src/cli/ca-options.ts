import { readFile } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import { splitPemChain } from "../crypto/pem";
import { readConfig } from "../store/config";
import { UsageError } from "../util/errors";
import { flag, list, type OptionSpec, type ParsedOptions, str } from "./options";
import { resolveServer, SERVER_SHORTCUTS } from "./servers";

/** --server, --staging, --ca-bundle: which CA, and what to trust for its HTTPS. */
export const CA_OPTIONS: OptionSpec[] = [
  {
    name: "server",
    type: "string",
    arg: "URL|NAME",
    help: `CA directory URL or one of: ${Object.keys(SERVER_SHORTCUTS).join(", ")}`,
  },
  {
    name: "staging",
    type: "boolean",
    help: "use Let's Encrypt's staging CA",
  },
  {
    name: "ca-bundle",
    type: "string",
    arg: "FILE",
    help: "extra CA certificates (PEM) to trust for the ACME server's HTTPS",
  },
];

/** --eab-kid, --eab-hmac-key: external account binding, only used when an account is registered. */
export const EAB_OPTIONS: OptionSpec[] = [
  {
    name: "eab-kid",
    type: "string",
    arg: "ID",
    help: "external account binding key id (ZeroSSL, Google, ...)",
  },
  { name: "eab-hmac-key", type: "string", arg: "KEY", help: "external account binding HMAC key (base64url)" },
];

export interface CaChoice {
  server: string;
  /** Absolute path of a readable PEM file, when one was given (or recorded). */
  caBundle: string | undefined;
}

/**
 * The CA from --server/--staging/--ca-bundle. When neither --server nor --staging is given,
 * `fallback` (e.g. a certificate's renewal.json) is used, else the default CA (letsencrypt).
 * A --ca-bundle on the command line wins over the fallback's. Checks the bundle is readable PEM.
 */
export async function parseCaOptions(opts: ParsedOptions, fallback?: Partial<CaChoice>): Promise<CaChoice> {
  const given = str(opts, "server") !== undefined || flag(opts, "staging");
  const server =
    !given && fallback?.server ? fallback.server : resolveServer(str(opts, "server"), flag(opts, "staging"));
  const bundleArg = str(opts, "ca-bundle");
  let caBundle = bundleArg !== undefined ? resolvePath(bundleArg) : given ? undefined : fallback?.caBundle;
  if (caBundle !== undefined) caBundle = await checkCaBundle(caBundle, bundleArg !== undefined);
  return { server, caBundle };
}

async function checkCaBundle(file: string, fromCommandLine: boolean): Promise<string> {
  const what = fromCommandLine ? `--ca-bundle ${file}` : `the CA bundle ${file} recorded in renewal.json`;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(
      `cannot read ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        hint: "Give a readable PEM file with the CA certificate(s) to trust (--ca-bundle FILE).",
      },
    );
  }
  if (splitPemChain(text).length === 0) {
    throw new UsageError(`${what} holds no PEM certificate`, {
      hint: "It must contain -----BEGIN CERTIFICATE----- blocks.",
    });
  }
  return file;
}

/** --eab-kid with --eab-hmac-key (both or neither); the key decoded from base64url. */
export function parseEabOptions(opts: ParsedOptions): { kid: string; hmacKey: Uint8Array } | undefined {
  const kid = str(opts, "eab-kid");
  const key = str(opts, "eab-hmac-key");
  if ((kid === undefined) !== (key === undefined)) {
    const [has, lacks] = kid === undefined ? ["eab-hmac-key", "eab-kid"] : ["eab-kid", "eab-hmac-key"];
    throw new UsageError(`--${has} was given without --${lacks}`, {
      hint: "External account binding needs both the key id and the HMAC key from the CA.",
    });
  }
  if (kid === undefined || key === undefined) return undefined;
  const cleaned = key.trim().replace(/=+$/, "");
  if (!/^[A-Za-z0-9_\-+/]+$/.test(cleaned)) {
    throw new UsageError("--eab-hmac-key is not base64url", {
      hint: "Copy the HMAC key exactly as the CA shows it.",
    });
  }
  return { kid, hmacKey: Buffer.from(cleaned.replace(/\+/g, "-").replace(/\//g, "_"), "base64url") };
}

/** --email values (repeatable, comma-separated), checked. */
export function parseEmails(values: string[]): string[] {
  const email = values
    .flatMap((e) => e.split(","))
    .map((e) => e.trim())
    .filter(Boolean);
  for (const e of email) {
    if (!/^[^@\s:]+@[^@\s]+\.[^@\s]+$/.test(e)) {
      throw new UsageError(`--email "${e}" is not an e-mail address`, {
        hint: "Example: --email admin@example.com",
      });
    }
  }
  return email;
}

/**
 * What a command that may register this home's account needs from its options: the CA, the EAB
 * credentials, and the contacts (--email, else the home's default set with wile config --email).
 */
export async function registrationOptions(
  opts: ParsedOptions,
  home: string,
): Promise<{ ca: CaChoice; eab: ReturnType<typeof parseEabOptions>; email: string[] }> {
  const ca = await parseCaOptions(opts);
  const eab = parseEabOptions(opts);
  let email = parseEmails(list(opts, "email"));
  if (email.length === 0) email = (await readConfig(home)).email ?? [];
  return { ca, eab, email };
}
