import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { VERSION } from "../version";
import type { Logger } from "./log";
import { describeExit, runShell } from "./spawn";
import { printable } from "./text";

/** What one `wile cron` run did; the document notifyUrl receives and notifyCmd reads on stdin. */
export interface RunReport {
  checked: number;
  renewed: string[];
  failed: Array<{ name: string; error: string }>;
  skipped: number;
  startedAt: string;
  finishedAt: string;
  /** "12 checked, 2 renewed, 1 failed: b.example.com: <reason>" */
  summary: string;
}

/** Where and when to report a cron run; config.json holds these (HomeConfig extends this). */
export interface NotifySettings {
  /** A shell command (sh -c) run after a cron run that had failures (or after every run with notifyOn "always"). */
  notifyCmd?: string;
  /** An http(s) URL that gets a POST of the JSON run report, same condition as notifyCmd. */
  notifyUrl?: string;
  notifyOn: "failure" | "always";
  /** An http(s) URL fetched (GET) after each cron run without failures (dead-man's switch). */
  heartbeatUrl?: string;
}

/** Timeouts, shorter in tests. */
export interface NotifyLimits {
  /** notifyCmd; default 60 s. */
  cmdTimeoutMs?: number;
  /** notifyUrl and heartbeatUrl; default 15 s. */
  httpTimeoutMs?: number;
}

export const NOTIFY_CMD_TIMEOUT_MS = 60_000;
export const HTTP_TIMEOUT_MS = 15_000;
/** How much of a notification endpoint's answer is read (the rest is discarded). */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** The one summary line of a run: "12 checked, 2 renewed, 1 failed: b.example.com: <reason>; ...". */
export function summarize(r: Pick<RunReport, "checked" | "renewed" | "failed">): string {
  const head = `${r.checked} checked, ${r.renewed.length} renewed, ${r.failed.length} failed`;
  if (r.failed.length === 0) return head;
  return `${head}: ${r.failed.map((f) => `${f.name}: ${f.error}`).join("; ")}`;
}

/**
 * Tells the operator about a run, as configured: on failure (or after every run with
 * notifyOn "always") runs notifyCmd and POSTs the report to notifyUrl, both at once. Never throws:
 * a notification that fails is a warning and does not change the run's exit code.
 */
export async function notify(
  cfg: NotifySettings,
  report: RunReport,
  logger: Logger,
  limits: NotifyLimits = {},
): Promise<void> {
  const failed = report.failed.length > 0;
  if (!failed && cfg.notifyOn !== "always") return;
  const event = failed ? "failure" : "success";
  const body = JSON.stringify({ event, ...report });
  const jobs: Array<Promise<void>> = [];
  if (cfg.notifyCmd) jobs.push(notifyCommand(cfg.notifyCmd, event, report, body, logger, limits));
  if (cfg.notifyUrl) jobs.push(notifyPost(cfg.notifyUrl, body, logger, limits));
  await Promise.all(jobs);
}

/** After a run without failures: GET the heartbeat URL (dead-man's switch). Never throws. */
export async function heartbeat(url: string, logger: Logger, limits: NotifyLimits = {}): Promise<void> {
  try {
    const res = await httpCall("GET", url, undefined, limits.httpTimeoutMs ?? HTTP_TIMEOUT_MS);
    if (res.status >= 200 && res.status < 300) logger.debug(`heartbeat ${where(url)}: HTTP ${res.status}`);
    else logger.warn(`heartbeat to ${where(url)} answered HTTP ${res.status}${answer(res.body)}`);
  } catch (e) {
    logger.warn(`heartbeat to ${where(url)} failed: ${(e as Error).message}`);
  }
}

/**
 * Everything that follows a cron run: notify(), then the heartbeat when nothing failed and a
 * heartbeatUrl is set. Never throws.
 */
export async function afterRun(
  cfg: NotifySettings,
  report: RunReport,
  logger: Logger,
  limits: NotifyLimits = {},
): Promise<void> {
  await notify(cfg, report, logger, limits);
  if (report.failed.length === 0 && cfg.heartbeatUrl) await heartbeat(cfg.heartbeatUrl, logger, limits);
}

async function notifyCommand(
  command: string,
  event: string,
  report: RunReport,
  body: string,
  logger: Logger,
  limits: NotifyLimits,
): Promise<void> {
  const timeoutMs = limits.cmdTimeoutMs ?? NOTIFY_CMD_TIMEOUT_MS;
  try {
    const r = await runShell(command, {
      timeoutMs,
      input: `${body}\n`,
      env: {
        ...process.env,
        WILE_EVENT: event,
        WILE_SUMMARY: report.summary,
        WILE_FAILED: report.failed.map((f) => f.name).join(" "),
        WILE_RENEWED: report.renewed.join(" "),
      },
    });
    if (r.code === 0 && !r.timedOut) {
      logger.debug(`notify command: exit 0`);
      return;
    }
    const why = describeExit(r, timeoutMs);
    const err = printable(r.stderr, 300);
    logger.warn(`notify command failed (${why})${err ? `: ${err}` : ""}`);
  } catch (e) {
    logger.warn(`notify command could not be started: ${(e as Error).message}`);
  }
}

async function notifyPost(url: string, body: string, logger: Logger, limits: NotifyLimits): Promise<void> {
  try {
    const res = await httpCall("POST", url, body, limits.httpTimeoutMs ?? HTTP_TIMEOUT_MS);
    if (res.status >= 200 && res.status < 300) logger.debug(`notify ${where(url)}: HTTP ${res.status}`);
    else logger.warn(`notify POST to ${where(url)} answered HTTP ${res.status}${answer(res.body)}`);
  } catch (e) {
    logger.warn(`notify POST to ${where(url)} failed: ${(e as Error).message}`);
  }
}

/** scheme://host[:port] only: the path of a ping URL is often its secret. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "(invalid URL)";
  }
}

function answer(body: string): string {
  const text = printable(body, 200);
  return text ? `: ${text}` : "";
}

/** One http(s) request with an overall timeout and a capped response body. Redirects are not followed. */
function httpCall(
  method: "GET" | "POST",
  url: string,
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new Error("not a valid URL"));
      return;
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      reject(new Error(`unsupported scheme ${u.protocol} (http or https only)`));
      return;
    }
    const headers: Record<string, string> = { "User-Agent": `wile/${VERSION}`, Accept: "*/*" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    const req = (u.protocol === "https:" ? httpsRequest : httpRequest)(u, { method, headers });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        if (size >= MAX_RESPONSE_BYTES) return;
        chunks.push(c.subarray(0, MAX_RESPONSE_BYTES - size));
        size += Math.min(c.length, MAX_RESPONSE_BYTES - size);
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    req.end(body);
  });
}
