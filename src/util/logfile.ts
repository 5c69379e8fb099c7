import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  writeSync,
} from "node:fs";
import { join, resolve } from "node:path";
import type { Logger } from "./log";

/**
 * `<home>/logs/wile.log`: one line per event, `2026-11-23T12:00:00.000Z INFO [1234] message`.
 * Lines are appended synchronously (open, write, close: a crash loses nothing already logged and
 * concurrent runs interleave whole lines), the file is 0600 in a 0700 directory whatever the umask,
 * and it is rotated when the next line would take it past `maxBytes` (1 MiB): wile.log.1 is the
 * newest old file, wile.log.3 the oldest kept. Writing never throws: the first failure is reported
 * through `onError` and later lines are dropped quietly.
 */
export interface FileLog {
  readonly path: string;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Written only when the log was opened with verbose (-v). */
  debug(message: string): void;
}

export interface FileLogOptions {
  /** Also write debug lines (-v). Default false. */
  verbose?: boolean;
  /** Rotate when the file would grow past this. Default 1 MiB. */
  maxBytes?: number;
  /** Old files kept (wile.log.1 .. wile.log.<keep>). Default 3. */
  keep?: number;
  /** Called once, on the first failed write. */
  onError?: (err: Error) => void;
  /** Clock, for tests. */
  now?: () => Date;
}

export const LOG_MAX_BYTES = 1024 * 1024;
export const LOG_KEEP = 3;

export function logFilePath(home: string): string {
  return join(home, "logs", "wile.log");
}

export function openFileLog(home: string, options: FileLogOptions = {}): FileLog {
  const dir = resolve(home, "logs");
  const path = logFilePath(home);
  const maxBytes = options.maxBytes ?? LOG_MAX_BYTES;
  const keep = options.keep ?? LOG_KEEP;
  const now = options.now ?? (() => new Date());
  let failed = false;
  let dirReady = false;

  const write = (level: string, message: string) => {
    if (failed) return;
    try {
      if (!dirReady) {
        ensureDirSync(dir);
        dirReady = true;
      }
      const line = formatLine(now(), level, process.pid, message);
      const bytes = Buffer.byteLength(line);
      const size = sizeOf(path);
      if (size > 0 && size + bytes > maxBytes) rotate(path, keep);
      const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
      try {
        if ((fstatSync(fd).mode & 0o777) !== 0o600) fchmodSync(fd, 0o600);
        writeSync(fd, line);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      failed = true;
      options.onError?.(e as Error);
    }
  };

  return {
    path,
    info: (m) => write("INFO", m),
    warn: (m) => write("WARN", m),
    error: (m) => write("ERROR", m),
    debug: (m) => {
      if (options.verbose) write("DEBUG", m);
    },
  };
}

/** One log line, newline included: the message flattened to one line and redacted. */
export function formatLine(at: Date, level: string, pid: number, message: string): string {
  const flat = redact(message)
    .replace(/\r\n|\r|\n/g, " | ")
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "?");
  return `${at.toISOString()} ${level} [${pid}] ${flat}\n`;
}

/**
 * Defensive masking of secrets that must never reach a log even if a caller slips: EAB HMAC keys
 * (as an option, a key=value, or a JSON field), private key PEM blocks, Authorization headers,
 * and passwords in URLs.
 */
export function redact(message: string): string {
  return (
    message
      .replace(
        /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g,
        "[private key redacted]",
      )
      .replace(/(--eab-hmac-key(?:=|\s+))("[^"]*"|'[^']*'|\S+)/gi, "$1[redacted]")
      .replace(/(["']?(?:eab[-_]?)?hmac[-_]?key["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;}]+)/gi, "$1[redacted]")
      .replace(/(authorization\s*:\s*)(\S+(?:\s+\S+)?)/gi, "$1[redacted]")
      // user:password@ in a URL
      .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/@]*@/gi, "$1[redacted]@")
  );
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** wile.log -> wile.log.1 -> ... -> wile.log.<keep>; the oldest falls off. */
function rotate(path: string, keep: number): void {
  for (let i = keep - 1; i >= 1; i--) {
    try {
      renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
  try {
    if (keep >= 1) renameSync(path, `${path}.1`);
    else closeSync(openSync(path, constants.O_WRONLY | constants.O_TRUNC));
  } catch (e) {
    // Another process rotated it a moment ago.
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/** mkdir -p with 0700 on every directory created (umask-proof); an existing dir is left as it is. */
function ensureDirSync(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  // chmod everything from the first created directory down to `dir`.
  chmodSync(first, 0o700);
  let cur = first;
  for (const part of dir.slice(first.length).split("/").filter(Boolean)) {
    cur = join(cur, part);
    chmodSync(cur, 0o700);
  }
}

/**
 * A Logger that writes to `base` (the terminal) and to the log file: info, warn and debug go to
 * both (the file keeps debug lines only when opened verbose). Errors reach the file through
 * `log.error`, called where the error is reported.
 */
export function teeLogger(base: Logger, log: FileLog): Logger {
  return {
    info: (m) => {
      base.info(m);
      log.info(m);
    },
    warn: (m) => {
      base.warn(m);
      log.warn(m);
    },
    debug: (m) => {
      base.debug(m);
      log.debug(m);
    },
  };
}
