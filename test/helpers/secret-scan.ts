/**
 * Finds key material and known secret values in text or bytes (issue 10 part 7). Pure functions,
 * shared by the audit hooks of the e2e helpers (secrets-audit.ts) and scripts/secrets-audit.mjs.
 *
 * Key material is recognised by shape: a PEM private key block ("...PRIVATE KEY-----" and data,
 * any flavour: PKCS#8, RSA, EC, ENCRYPTED, OPENSSH; also JSON-escaped or flattened into a log line) and a JSON object that looks like a JWK ("kty")
 * holding a private member (d, p, q, dp, dq, qi, k). Secret values (EAB HMAC keys, PKCS#12
 * passwords) are learned from the argv of each run and searched for in every form they could take:
 * as given, JSON-escaped, and for an HMAC key its decoded bytes raw, in base64, base64url and hex.
 */

export type SecretKind = "eab-hmac-key" | "pfx-password" | "dns-api-token";

export interface Secret {
  kind: SecretKind;
  value: string;
}

/** Forms shorter than this are not searched for: they would match by chance. */
export const MIN_FORM = 8;

const SECRET_FLAGS: Record<string, SecretKind> = {
  "--eab-hmac-key": "eab-hmac-key",
  "--pfx-password": "pfx-password",
};

/** The secrets a run's argv hands to wile (`--flag value` and `--flag=value`). */
export function secretsFromArgv(argv: readonly string[]): Secret[] {
  const out: Secret[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const eq = a.indexOf("=");
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const kind = SECRET_FLAGS[flag];
    if (!kind) continue;
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value) out.push({ kind, value });
  }
  return out;
}

/** Every byte string under which `s` could show up in a file or an output. */
export function secretForms(s: Secret): Buffer[] {
  const forms = new Set<string>();
  const bytes: Buffer[] = [];
  const add = (t: string) => forms.add(t);
  add(s.value);
  add(JSON.stringify(s.value).slice(1, -1));
  if (s.kind === "eab-hmac-key") {
    // wile decodes the base64url key and signs with the bytes.
    const raw = Buffer.from(s.value, "base64url");
    if (raw.length > 0) {
      bytes.push(raw);
      add(raw.toString("base64"));
      add(raw.toString("base64").replace(/=+$/, ""));
      add(raw.toString("base64url"));
      add(raw.toString("hex"));
    }
  } else {
    add(Buffer.from(s.value).toString("base64").replace(/=+$/, ""));
    add(Buffer.from(s.value).toString("base64url"));
  }
  return [...[...forms].map((f) => Buffer.from(f)), ...bytes].filter((b) => b.length >= MIN_FORM);
}

/** Unique secrets (same kind and value once). */
export function uniqueSecrets(list: Iterable<Secret>): Secret[] {
  const seen = new Map<string, Secret>();
  for (const s of list) seen.set(`${s.kind}\0${s.value}`, s);
  return [...seen.values()];
}

/** Which of `secrets` occur in `data`, in any form. */
export function findSecrets(data: Buffer, secrets: readonly Secret[]): Secret[] {
  return secrets.filter((s) => secretForms(s).some((f) => data.includes(f)));
}

/**
 * A BEGIN line followed by key data: on the next line, after a JSON-escaped line break, or after
 * the " | " a log line puts for one. The marker alone (in wile's own code) is not a key.
 */
const PEM_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:\\[rn]|[\s|])+(?:[A-Za-z0-9+/]{16}|Proc-Type:)/g;
const JWK_PRIVATE = ["d", "p", "q", "dp", "dq", "qi", "k"];

/** Descriptions of the key material in `text`: "PEM private key (EC)", "JWK private member d". */
export function findKeyMaterial(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(PEM_KEY)) found.add(`PEM private key${m[1] ? ` (${m[1].trim()})` : ""}`);
  // JSON as written, and JSON quoted inside a JSON string or a log line.
  for (const t of [text, text.replace(/\\"/g, '"')]) {
    for (const obj of jsonObjectsWith(t, '"kty"')) {
      for (const k of JWK_PRIVATE) {
        if (typeof obj[k] === "string" && obj[k] !== "") found.add(`JWK private member "${k}"`);
      }
    }
  }
  return [...found];
}

/** The JSON objects around each occurrence of `marker` that parse. */
function jsonObjectsWith(text: string, marker: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  let at = text.indexOf(marker);
  while (at >= 0) {
    const start = text.lastIndexOf("{", at);
    if (start >= 0) {
      let depth = 0;
      for (let i = start; i < text.length && i < start + 100_000; i++) {
        const c = text[i];
        if (c === "{") depth++;
        else if (c === "}" && --depth === 0) {
          try {
            const v: unknown = JSON.parse(text.slice(start, i + 1));
            if (v && typeof v === "object" && !Array.isArray(v)) out.push(v as Record<string, unknown>);
          } catch {
            // not JSON: not a JWK
          }
          break;
        }
      }
    }
    at = text.indexOf(marker, at + marker.length);
  }
  return out;
}

/** Everything in `data` that is key material or one of `secrets`, as descriptions. */
export function scanBytes(data: Buffer, secrets: readonly Secret[]): { keys: string[]; secrets: Secret[] } {
  return { keys: findKeyMaterial(data.toString("latin1")), secrets: findSecrets(data, secrets) };
}
