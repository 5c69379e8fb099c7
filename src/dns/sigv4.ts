/**
 * AWS Signature Version 4 (header form) on node:crypto, for the Route 53 provider: the canonical
 * request, the string to sign, the derived signing key and the Authorization header, as AWS's
 * "Signature Version 4 signing process" describes them and its published test suite checks
 * (test/unit/dns/sigv4.test.ts replays cases of that suite).
 *
 *     CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
 *                        SignedHeaders \n hex(SHA-256(body))
 *     StringToSign     = AWS4-HMAC-SHA256 \n YYYYMMDDTHHMMSSZ \n DATE/REGION/SERVICE/aws4_request \n
 *                        hex(SHA-256(CanonicalRequest))
 *     kSigning         = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, DATE), REGION), SERVICE), "aws4_request")
 *
 * The canonical URI is the path with each segment percent-encoded once (RFC 3986 unreserved
 * characters kept), which is what every service but S3 expects for the paths wile sends.
 */
import { createHash, createHmac } from "node:crypto";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials (STS) carry one; it is sent and signed as X-Amz-Security-Token. */
  sessionToken?: string;
}

export interface SignInput {
  method: string;
  url: string;
  /** Headers to send besides the ones signing adds; all of them are signed. */
  headers: Record<string, string>;
  body: string;
  region: string;
  service: string;
  /** The signing time (default now). */
  now?: Date;
}

export const sha256Hex = (data: string): string => createHash("sha256").update(data, "utf8").digest("hex");
const hmac = (key: Buffer | string, data: string): Buffer =>
  createHmac("sha256", key).update(data, "utf8").digest();

/** RFC 3986 percent-encoding of everything but the unreserved characters A-Z a-z 0-9 - . _ ~ */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `20150830T123600Z` */
export function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

function canonicalPath(pathname: string): string {
  return pathname
    .split("/")
    .map((seg) => uriEncode(decodeURIComponent(seg)))
    .join("/");
}

/** The query string sorted by encoded name, then value (`+` is a plus, not a space, for AWS). */
function canonicalQuery(search: string): string {
  const q = search.replace(/^\?/, "");
  if (q === "") return "";
  return q
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      const k = eq < 0 ? pair : pair.slice(0, eq);
      const v = eq < 0 ? "" : pair.slice(eq + 1);
      return [uriEncode(decodeURIComponent(k)), uriEncode(decodeURIComponent(v))] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/**
 * The canonical request of a request as sent: `headers` are its header lines in order (a name may
 * repeat: the values are joined with commas), `signed` the lower-case names to sign.
 */
export function canonicalRequest(
  method: string,
  url: string,
  headers: ReadonlyArray<readonly [string, string]>,
  signed: readonly string[],
  payloadHash: string,
): string {
  const u = new URL(url);
  const values = new Map<string, string[]>();
  for (const [name, value] of headers) {
    const n = name.toLowerCase();
    if (!signed.includes(n)) continue;
    values.set(n, [...(values.get(n) ?? []), value.trim().replace(/\s+/g, " ")]);
  }
  const names = [...signed].sort();
  const lines = names.map((n) => `${n}:${(values.get(n) ?? []).join(",")}\n`).join("");
  return [
    method,
    canonicalPath(u.pathname),
    canonicalQuery(u.search),
    lines,
    names.join(";"),
    payloadHash,
  ].join("\n");
}

/** `DATE/REGION/SERVICE/aws4_request` */
export function credentialScope(date: string, region: string, service: string): string {
  return `${date.slice(0, 8)}/${region}/${service}/aws4_request`;
}

export function stringToSign(amz: string, scope: string, canonical: string): string {
  return ["AWS4-HMAC-SHA256", amz, scope, sha256Hex(canonical)].join("\n");
}

/** hex HMAC of the string to sign with the key derived from the secret for that day, region, service. */
export function signature(secretAccessKey: string, scope: string, toSign: string): string {
  const [date, region, service] = scope.split("/") as [string, string, string];
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), "aws4_request");
  return createHmac("sha256", key).update(toSign, "utf8").digest("hex");
}

/**
 * The headers to send: the given ones plus X-Amz-Date, X-Amz-Security-Token (with a session token)
 * and Authorization. All of them are signed, and so is Host: the URL's host (with the port when it
 * is not the scheme's default), which fetch sends by itself.
 */
export function signRequest(input: SignInput, creds: AwsCredentials): Record<string, string> {
  const u = new URL(input.url);
  const amz = amzDate(input.now ?? new Date());
  const headers: Record<string, string> = { ...input.headers, "X-Amz-Date": amz };
  if (creds.sessionToken) headers["X-Amz-Security-Token"] = creds.sessionToken;
  const entries: [string, string][] = [["host", u.host], ...Object.entries(headers)];
  const signed = [...new Set(entries.map(([n]) => n.toLowerCase()))].sort();
  const canonical = canonicalRequest(input.method, input.url, entries, signed, sha256Hex(input.body));
  const scope = credentialScope(amz, input.region, input.service);
  const sig = signature(creds.secretAccessKey, scope, stringToSign(amz, scope, canonical));
  headers.Authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${sig}`;
  return headers;
}
