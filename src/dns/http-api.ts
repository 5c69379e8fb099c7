/**
 * One request to a DNS provider's HTTP API (src/dns/providers/*), on Node's built-in fetch: no
 * redirects followed (an API that redirects is misconfigured, and credentials must not follow a
 * redirect to another host), a timeout for the whole exchange, the answer capped in size, and
 * errors that name the provider, the method and the URL's path but never a header (credentials
 * travel in headers, so a URL must not carry them either: callers put tokens in `headers`).
 *
 * Certificates of the API's server are checked against Node's roots plus NODE_EXTRA_CA_CERTS, as
 * for every other https request wile makes.
 *
 * Rate limits: an answer 429 is retried (the same request; the API did not act on it) up to
 * RATE_LIMIT_RETRIES times after the wait its Retry-After asks for, as long as each wait is at most
 * RATE_LIMIT_MAX_WAIT_MS and all of them together stay within that too; otherwise the 429 goes to
 * the caller, whose unexpectedAnswer() says how long the API asked to wait.
 */
import { WileError } from "../util/errors";
import { parseRetryAfter } from "../util/retry-after";
import { printable } from "../util/text";
import { VERSION } from "../version";

export const API_TIMEOUT_MS = 30_000;
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
export const RATE_LIMIT_RETRIES = 3;
export const RATE_LIMIT_MAX_WAIT_MS = 60_000;
/** The wait after a 429 without a usable Retry-After. */
const RATE_LIMIT_DEFAULT_WAIT_MS = 2_000;

export interface ApiRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON (Content-Type application/json); a string as it is. */
  body?: unknown;
  timeoutMs?: number;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** Thrown for a transport failure or (with `status`) an answer the caller did not accept. */
export class ApiError extends WileError {
  constructor(
    message: string,
    readonly status?: number,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/**
 * Sends the request; resolves with any HTTP answer (the caller decides what a status means) and
 * rejects with ApiError when there is none: unreachable, timeout, redirect, oversized answer.
 * `provider` names the API in messages ("Cloudflare").
 */
export async function apiRequest(provider: string, req: ApiRequest): Promise<ApiAnswer> {
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    const answer = await apiRequestOnce(provider, req);
    if (answer.status !== 429 || attempt >= RATE_LIMIT_RETRIES) return answer;
    const wait =
      parseRetryAfter(answer.headers.get("retry-after") ?? undefined) ?? RATE_LIMIT_DEFAULT_WAIT_MS;
    if (waited + wait > RATE_LIMIT_MAX_WAIT_MS) return answer;
    waited += wait;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

async function apiRequestOnce(provider: string, req: ApiRequest): Promise<ApiAnswer> {
  const url = new URL(req.url);
  const where = `${req.method} ${url.protocol}//${url.host}${url.pathname}`;
  const timeoutMs = req.timeoutMs ?? API_TIMEOUT_MS;
  const headers: Record<string, string> = { "User-Agent": `wile/${VERSION}`, Accept: "application/json" };
  let body: string | undefined;
  if (req.body !== undefined) {
    body = typeof req.body === "string" ? req.body : JSON.stringify(req.body);
    if (typeof req.body !== "string") headers["Content-Type"] = "application/json";
  }
  Object.assign(headers, req.headers);
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method,
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why =
      e.name === "TimeoutError"
        ? `no answer within ${timeoutMs / 1000} s`
        : printable(e.cause?.code ?? e.cause?.message ?? e.message, 200);
    throw new ApiError(`the ${provider} API (${where}) could not be reached: ${why}`, undefined, {
      hint: "Check the API address, this host's network and, for a private CA, NODE_EXTRA_CA_CERTS.",
    });
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw new ApiError(
      `the ${provider} API (${where}) answered with a redirect (HTTP ${res.status}), which wile does not follow`,
      res.status,
      { hint: "Check the API address: give the URL the redirect points to." },
    );
  }
  const text = await readCapped(res, where, provider);
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function readCapped(res: Response, where: string, provider: string): Promise<string> {
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    let part: Awaited<ReturnType<typeof reader.read>>;
    try {
      part = await reader.read();
    } catch (err) {
      throw new ApiError(
        `the ${provider} API (${where}) broke off its answer: ${printable(String(err), 200)}`,
      );
    }
    if (part.done) break;
    size += part.value.length;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      throw new ApiError(`the ${provider} API (${where}) sent more than ${MAX_ANSWER_BYTES >> 20} MB`);
    }
    chunks.push(part.value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * An ApiError for an answer the caller does not accept: the status and, printable and short, the
 * API's own message (`detail` picked by the caller from the JSON when it has one).
 */
export function unexpectedAnswer(
  provider: string,
  what: string,
  answer: ApiAnswer,
  detail?: string,
  hint?: string,
): ApiError {
  const said = printable(detail ?? answer.text, 300);
  const auth = answer.status === 401 || answer.status === 403;
  const retryAfter = answer.headers.get("retry-after");
  const limited =
    answer.status === 429
      ? `${provider} limits the rate of requests${retryAfter ? ` and asked to wait ${printable(retryAfter, 40)}${/^\d+$/.test(retryAfter.trim()) ? " s" : ""}` : ""}; wile retried ${RATE_LIMIT_RETRIES} times at most within ${RATE_LIMIT_MAX_WAIT_MS / 1000} s. Run again later.`
      : undefined;
  return new ApiError(
    `${provider} refused to ${what} (HTTP ${answer.status})${said ? `: ${said}` : ""}`,
    answer.status,
    {
      hint:
        hint ??
        limited ??
        (auth
          ? `Check the ${provider} credentials and that they may change this zone.`
          : `Check the ${provider} settings; run again with -v for details.`),
    },
  );
}
