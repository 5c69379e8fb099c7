import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { unlink } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { dirname, join } from "node:path";
import { UsageError, WileError } from "../util/errors";
import { VERSION } from "../version";

/**
 * Where releases are downloaded from when nothing else says (install.sh has the same constant in
 * WILE_DEFAULT_DOWNLOAD_URL; test/unit/install/download.test.ts keeps the two equal). A release is
 * one folder: install.sh, wile.cjs, wile-linux-x64, wile-linux-arm64, SHA256SUMS.
 */
export const DEFAULT_DOWNLOAD_URL = "https://github.com/wile-acme/wile/releases/latest/download";

const MAX_REDIRECTS = 5;
const SUMS_MAX_BYTES = 64 * 1024;
/** The standalone binaries are about 150 MB. */
export const ARTIFACT_MAX_BYTES = 512 * 1024 * 1024;
const TIMEOUT_MS = 60_000;

/**
 * Checks a download base and returns it without a trailing slash: https://, or http:// only to a
 * loopback host (tests, a local mirror through an SSH tunnel). SHA256SUMS comes from the same
 * place as the program, so plain http elsewhere would protect nothing.
 */
export function checkBaseUrl(base: string): string {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new UsageError(`not a URL: ${base}`, { hint: "Example: --from https://example.com/wile/latest" });
  }
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i.test(u.hostname);
  if (!(u.protocol === "https:" || (u.protocol === "http:" && loopback))) {
    throw new UsageError(`the download address must be https:// (http:// only on loopback): ${base}`);
  }
  return base.replace(/\/+$/, "");
}

/** SHA256SUMS text ("<hex>  <name>" or "<hex> *<name>" per line) as name -> lowercase hex. */
export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+?)\r?$/.exec(line);
    if (m?.[1] && m[2]) sums.set(m[2], m[1].toLowerCase());
  }
  return sums;
}

interface GetOptions {
  timeoutMs?: number;
  maxBytes: number;
}

/** A GET that follows up to 5 redirects (never from https down to http), with a timeout over the whole body. */
function get(url: string, opts: GetOptions, onBody: (res: IncomingMessage) => Promise<void>): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  const attempt = (current: string, hops: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const u = new URL(current);
      const request = u.protocol === "https:" ? httpsRequest : httpRequest;
      const req = request(u, { headers: { "user-agent": `wile/${VERSION}` }, timeout: timeoutMs }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (hops >= MAX_REDIRECTS) return reject(new WileError(`too many redirects fetching ${url}`));
          const next = new URL(res.headers.location, u);
          if (u.protocol === "https:" && next.protocol !== "https:") {
            return reject(
              new WileError(`${current} redirects to a non-https address (${next.href}); refused`),
            );
          }
          return attempt(next.href, hops + 1).then(resolve, reject);
        }
        if (status !== 200) {
          res.resume();
          return reject(new WileError(`GET ${current}: HTTP ${status}`));
        }
        const declared = Number(res.headers["content-length"] ?? 0);
        if (declared > opts.maxBytes) {
          res.destroy();
          return reject(
            new WileError(`GET ${current}: ${declared} bytes is more than the ${opts.maxBytes} allowed`),
          );
        }
        onBody(res).then(resolve, reject);
      });
      const timer = setTimeout(
        () => req.destroy(new WileError(`GET ${current}: no answer within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      req.on("close", () => clearTimeout(timer));
      req.on("timeout", () => req.destroy(new WileError(`GET ${current}: timed out`)));
      req.on("error", (e) =>
        reject(e instanceof WileError ? e : new WileError(`GET ${current}: ${e.message}`)),
      );
      req.end();
    });
  return attempt(url, 0);
}

/** A small text file (SHA256SUMS). */
export async function fetchText(url: string, maxBytes = SUMS_MAX_BYTES): Promise<string> {
  let text = "";
  await get(
    url,
    { maxBytes },
    (res) =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) res.destroy(new WileError(`GET ${url}: more than ${maxBytes} bytes`));
          else chunks.push(c);
        });
        res.on("error", reject);
        res.on("end", () => {
          text = Buffer.concat(chunks).toString("utf8");
          resolve();
        });
      }),
  );
  return text;
}

/**
 * Downloads url into a new temp file in `dir` (0700 while written) and returns its path and
 * SHA-256. The temp file is removed on any error.
 */
export async function fetchToTemp(
  url: string,
  dir: string,
  maxBytes = ARTIFACT_MAX_BYTES,
): Promise<{ path: string; sha256: string; size: number }> {
  const path = join(dir, `.wile-download-${randomBytes(6).toString("hex")}`);
  const hash = createHash("sha256");
  let size = 0;
  try {
    await get(
      url,
      { maxBytes },
      (res) =>
        new Promise((resolve, reject) => {
          const file = createWriteStream(path, { flags: "wx", mode: 0o700 });
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > maxBytes) res.destroy(new WileError(`GET ${url}: more than ${maxBytes} bytes`));
            else hash.update(c);
          });
          res.on("error", (e) => {
            file.destroy();
            reject(e);
          });
          file.on("error", reject);
          file.on("finish", () => resolve());
          res.pipe(file);
        }),
    );
  } catch (e) {
    await unlink(path).catch(() => {});
    throw e;
  }
  return { path, sha256: hash.digest("hex"), size };
}

/**
 * Downloads `<base>/<name>` next to `target` (same directory, so a rename can replace it) and
 * checks it against `<base>/SHA256SUMS`. On a mismatch the download is deleted and a WileError says so.
 */
export async function downloadVerified(
  base: string,
  name: string,
  target: string,
): Promise<{ path: string; sha256: string }> {
  const sums = parseSums(await fetchText(`${base}/SHA256SUMS`));
  const want = sums.get(name);
  if (!want) {
    throw new WileError(`${base}/SHA256SUMS has no line for ${name}`, {
      hint: "Nothing was changed. Is this a wile release folder?",
    });
  }
  const got = await fetchToTemp(`${base}/${name}`, dirname(target));
  if (got.sha256 !== want) {
    await unlink(got.path).catch(() => {});
    throw new WileError(
      `checksum mismatch for ${name}: SHA256SUMS says ${want}, the download is ${got.sha256}`,
      {
        hint: "The download is damaged or was tampered with. Nothing was changed.",
      },
    );
  }
  return { path: got.path, sha256: got.sha256 };
}
