import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { dirname, join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { UsageError, WileError } from "../util/errors";
import { findProgram } from "../util/programs";
import { printable } from "../util/text";
import { VERSION } from "../version";

/**
 * Where releases are downloaded from when nothing else says (install.sh has the same constant in
 * WILE_DEFAULT_DOWNLOAD_URL; test/unit/install/download.test.ts keeps the two equal). A release is
 * one folder: install.sh, wile.cjs, wile-linux-<arch>.xz and .gz for x64 and arm64, SHA256SUMS.
 */
export const DEFAULT_DOWNLOAD_URL = "https://github.com/wile-acme/wile/releases/latest/download";

const MAX_REDIRECTS = 5;
const SUMS_MAX_BYTES = 64 * 1024;
/** The standalone binaries are about 120 MB once decompressed. */
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

/** Writes `body` to the new file `path` (0700) while hashing it; at most maxBytes, else `tooBig()`. */
async function saveHashed(
  body: Readable,
  path: string,
  maxBytes: number,
  tooBig: () => Error,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > maxBytes) return done(tooBig());
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(body, cap, createWriteStream(path, { flags: "wx", mode: 0o700 }));
  return { sha256: hash.digest("hex"), size };
}

const tempIn = (dir: string) => join(dir, `.wile-download-${randomBytes(6).toString("hex")}`);

/**
 * Downloads url into a new temp file in `dir` (0700 while written) and returns its path and
 * SHA-256. The temp file is removed on any error.
 */
export async function fetchToTemp(
  url: string,
  dir: string,
  maxBytes = ARTIFACT_MAX_BYTES,
): Promise<{ path: string; sha256: string; size: number }> {
  const path = tempIn(dir);
  let saved = { sha256: "", size: 0 };
  try {
    await get(url, { maxBytes }, async (res) => {
      saved = await saveHashed(
        res,
        path,
        maxBytes,
        () => new WileError(`GET ${url}: more than ${maxBytes} bytes`),
      );
    });
  } catch (e) {
    await unlink(path).catch(() => {});
    // Errors of the file (EACCES and the like) stay as they are: `wile upgrade` explains those.
    if (e instanceof WileError || (e as NodeJS.ErrnoException).syscall !== undefined) throw e;
    throw new WileError(`GET ${url}: ${(e as Error).message}`, {
      hint: "The download was cut short. Nothing was changed; run it again.",
    });
  }
  return { path, ...saved };
}

/**
 * A form in which a release publishes a file: `<name>.xz`, `<name>.gz` or `<name>` itself
 * (scripts/release.mjs publishes the standalone binaries compressed only, wile.cjs plain).
 */
export interface Form {
  /** "" for the file itself. */
  ext: "" | ".xz" | ".gz";
  /** The decompressor's argv (reads stdin, writes stdout); undefined: zlib (gz) or none (""). */
  argv?: string[];
}

/**
 * The forms this host can decompress, smallest first: .xz when an xz decompressor is on PATH (xz,
 * unxz or xzcat, busybox's applets included), .gz (Node's zlib, always), then the file itself.
 * install.sh makes the same choice.
 */
export async function formsHere(env: Record<string, string | undefined> = process.env): Promise<Form[]> {
  const forms: Form[] = [];
  for (const [name, ...args] of [["xz", "-dc"], ["unxz", "-c"], ["xzcat"]] as const) {
    const path = await findProgram(name, env);
    if (path) {
      forms.push({ ext: ".xz", argv: [path, ...args] });
      break;
    }
  }
  return [...forms, { ext: ".gz" }, { ext: "" }];
}

/** Decompresses the verified download `file` into a new temp file in `dir`; returns it and its hash. */
async function decompress(form: Form, file: string, dir: string): Promise<{ path: string; sha256: string }> {
  const path = tempIn(dir);
  const tooBig = () => new Error(`it decompresses to more than ${ARTIFACT_MAX_BYTES} bytes`);
  try {
    if (!form.argv) {
      const saved = await saveHashed(
        createReadStream(file).pipe(createGunzip()),
        path,
        ARTIFACT_MAX_BYTES,
        tooBig,
      );
      return { path, sha256: saved.sha256 };
    }
    const [cmd, ...args] = form.argv as [string, ...string[]];
    const input = await open(file, "r");
    const child = spawn(cmd, args, { stdio: [input.fd, "pipe", "pipe"] });
    void input.close();
    let said = "";
    child.stderr?.on("data", (c: Buffer) => {
      said += c.toString();
    });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", resolve);
    });
    const [saved, code] = await Promise.all([
      saveHashed(child.stdout as Readable, path, ARTIFACT_MAX_BYTES, tooBig).catch((e: unknown) => {
        child.kill();
        throw e;
      }),
      exited,
    ]);
    if (code !== 0) throw new Error(`exit ${code}${said.trim() ? `: ${printable(said, 200)}` : ""}`);
    return { path, sha256: saved.sha256 };
  } catch (e) {
    await unlink(path).catch(() => {});
    throw e;
  }
}

/**
 * Downloads `<base>/<name>` next to `target` (same directory, so a rename can replace it) in the
 * smallest form this host can decompress (formsHere) that `<base>/SHA256SUMS` lists, checks the
 * downloaded file against SHA256SUMS before anything reads it, then decompresses it. Returns the
 * file (decompressed, a temp file beside target) and its SHA-256. Nothing is left behind on an
 * error: a mismatch or a decompression failure is a WileError naming the file.
 */
export async function downloadVerified(
  base: string,
  name: string,
  target: string,
  forms?: Form[],
): Promise<{ path: string; sha256: string; file: string }> {
  const sums = parseSums(await fetchText(`${base}/SHA256SUMS`));
  const candidates = forms ?? (await formsHere());
  const form = candidates.find((f) => sums.has(`${name}${f.ext}`));
  if (!form) {
    const tried = candidates.map((f) => `${name}${f.ext}`);
    throw new WileError(`${base}/SHA256SUMS has no line for ${tried.join(", ")}`, {
      hint: "Nothing was changed. Is this a wile release folder?",
    });
  }
  const file = `${name}${form.ext}`;
  const want = sums.get(file);
  const got = await fetchToTemp(`${base}/${file}`, dirname(target));
  if (got.sha256 !== want) {
    await unlink(got.path).catch(() => {});
    throw new WileError(
      `checksum mismatch for ${file}: SHA256SUMS says ${want}, the download is ${got.sha256}`,
      {
        hint: "The download is damaged or was tampered with. Nothing was changed.",
      },
    );
  }
  if (form.ext === "") return { path: got.path, sha256: got.sha256, file };
  try {
    return { ...(await decompress(form, got.path, dirname(target))), file };
  } catch (e) {
    const how = form.argv ? form.argv.join(" ") : "zlib";
    throw new WileError(`could not decompress ${file} (${how}): ${(e as Error).message}`, {
      hint: `It matched SHA256SUMS, so the file is as published. Nothing was changed. Check the free space in ${dirname(target)}${form.argv ? `, or run with a PATH without ${form.argv[0]} to take ${name}.gz instead` : ""}.`,
    });
  } finally {
    await unlink(got.path).catch(() => {});
  }
}
