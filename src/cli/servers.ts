import { UsageError } from "../util/errors";

/** --server shortcuts for well-known ACME CAs. */
export const SERVER_SHORTCUTS: Record<string, string> = {
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
  zerossl: "https://acme.zerossl.com/v2/DV90",
  google: "https://dv.acme-v02.api.pki.goog/directory",
  "google-staging": "https://dv.acme-v02.test-api.pki.goog/directory",
  buypass: "https://api.buypass.com/acme/directory",
  "buypass-staging": "https://api.test4.buypass.no/acme/directory",
  sslcom: "https://acme.ssl.com/sslcom-dv-ecc",
};

export const DEFAULT_SERVER = "letsencrypt";

/** The directory URL for --server / --staging; exit 2 on an unknown shortcut or a non-HTTPS URL. */
export function resolveServer(server: string | undefined, staging: boolean): string {
  if (staging && server !== undefined) {
    const url = SERVER_SHORTCUTS[server] ?? server;
    if (url !== SERVER_SHORTCUTS["letsencrypt-staging"]) {
      throw new UsageError("--staging and --server name different CAs", {
        hint: "Use one of them: --staging is short for --server letsencrypt-staging.",
      });
    }
  }
  const choice = server ?? (staging ? "letsencrypt-staging" : DEFAULT_SERVER);
  const known = SERVER_SHORTCUTS[choice];
  if (known) return known;
  if (!/^[a-z]+:\/\//i.test(choice)) {
    throw new UsageError(`unknown --server "${choice}"`, {
      hint: `Give a directory URL (https://...) or one of: ${Object.keys(SERVER_SHORTCUTS).join(", ")}.`,
    });
  }
  let url: URL;
  try {
    url = new URL(choice);
  } catch {
    throw new UsageError(`--server "${choice}" is not a valid URL`);
  }
  if (url.protocol !== "https:") {
    throw new UsageError(`--server ${choice} is not HTTPS; ACME requires HTTPS`, {
      hint: "Use the https:// directory URL of the CA.",
    });
  }
  return url.href;
}
