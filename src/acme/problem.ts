import { WileError } from "../util/errors";
import { isRecord, printable } from "../util/text";
import type { Identifier } from "./types";

/** RFC 8555 6.7: every ACME error type is this prefix plus a name. */
export const ACME_ERROR_PREFIX = "urn:ietf:params:acme:error:";

/** The ACME error types wile reacts to (RFC 8555 6.7, RFC 9773, draft-ietf-acme-profiles). */
export type AcmeErrorName =
  | "accountDoesNotExist"
  | "alreadyRevoked"
  | "alreadyReplaced"
  | "badCSR"
  | "badNonce"
  | "badPublicKey"
  | "badRevocationReason"
  | "badSignatureAlgorithm"
  | "caa"
  | "compound"
  | "connection"
  | "dns"
  | "externalAccountRequired"
  | "incorrectResponse"
  | "invalidContact"
  | "invalidProfile"
  | "malformed"
  | "orderNotReady"
  | "rateLimited"
  | "rejectedIdentifier"
  | "serverInternal"
  | "tls"
  | "unauthorized"
  | "unsupportedContact"
  | "unsupportedIdentifier"
  | "userActionRequired";

export interface Subproblem {
  type: string;
  detail: string;
  identifier?: Identifier;
}

/** What a CA said went wrong, with its type, detail and subproblems kept intact. */
export class AcmeProblem extends WileError {
  /** Full type URN (or whatever the server sent; "about:blank" when it sent none). */
  readonly type: string;
  readonly detail: string;
  readonly status: number;
  readonly subproblems: Subproblem[];
  /** From Retry-After, in milliseconds. */
  readonly retryAfterMs: number | null;
  /** The request URL that failed. */
  readonly url: string;
  /** Link rel="help" and similar, for rate limits and user action. */
  readonly links: string[];

  constructor(init: {
    type: string;
    detail: string;
    status: number;
    subproblems?: Subproblem[];
    retryAfterMs?: number | null;
    url: string;
    links?: string[];
    hint?: string;
  }) {
    const name = init.type.startsWith(ACME_ERROR_PREFIX)
      ? init.type.slice(ACME_ERROR_PREFIX.length)
      : init.type;
    // detail and subproblems are the CA's words: shown printable and capped, kept whole in the fields.
    const subs = (init.subproblems ?? [])
      .slice(0, 10)
      .map(
        (s) =>
          `\n  ${s.identifier ? `${printable(s.identifier.value, 80)}: ` : ""}${printable(s.detail || shortType(s.type), 200)}`,
      )
      .join("");
    const what = name === "about:blank" ? "answered" : `refused the request (${printable(name, 60)},`;
    super(
      `the CA at ${hostOf(init.url)} ${what} HTTP ${init.status}${name === "about:blank" ? "" : ")"}: ${printable(init.detail, 400) || "no detail given"}${subs}`,
      {
        hint: init.hint ?? hintFor(name, init.retryAfterMs ?? null, init.links ?? []),
      },
    );
    this.type = init.type;
    this.detail = init.detail;
    this.status = init.status;
    this.subproblems = init.subproblems ?? [];
    this.retryAfterMs = init.retryAfterMs ?? null;
    this.url = init.url;
    this.links = init.links ?? [];
  }

  /** True when this is the ACME error `urn:ietf:params:acme:error:<name>`. */
  is(name: AcmeErrorName): boolean {
    return this.type === ACME_ERROR_PREFIX + name;
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return printable(url, 80);
  }
}

function shortType(type: string): string {
  return type.startsWith(ACME_ERROR_PREFIX) ? type.slice(ACME_ERROR_PREFIX.length) : type;
}

function hintFor(name: string, retryAfterMs: number | null, links: string[]): string | undefined {
  const more = links.length > 0 ? ` See ${links.join(" ")}` : "";
  switch (name) {
    case "rateLimited": {
      const when =
        retryAfterMs === null ? "later" : `after ${new Date(Date.now() + retryAfterMs).toISOString()}`;
      return `A rate limit was hit; try again ${when}. Test against --staging first so mistakes do not count against production limits.${more}`;
    }
    case "externalAccountRequired":
      return "This CA needs external account binding: pass --eab-kid and --eab-hmac-key from the CA's dashboard.";
    case "userActionRequired":
      return `The CA wants you to act first (often: accept new terms of service).${more}`;
    case "caa":
      return "A CAA DNS record for this name does not allow this CA: add one for it or remove the restriction.";
    case "rejectedIdentifier":
    case "unsupportedIdentifier":
      return "The CA will not issue for this name (policy); check the spelling or use another CA.";
    case "invalidContact":
    case "unsupportedContact":
      return "Check the address given with --email.";
    case "badSignatureAlgorithm":
    case "badPublicKey":
      return "The CA does not accept this key type; try --key-type ec-256 or rsa-2048.";
    case "serverInternal":
      return `The CA had an internal error; try again in a few minutes.${more}`;
    default:
      return more ? more.trim() : undefined;
  }
}

/**
 * Builds an AcmeProblem from an error response. Accepts a non-JSON body too (a proxy's HTML page):
 * the detail then says what came back.
 */
export function problemFromResponse(init: {
  status: number;
  body: Buffer;
  contentType: string | undefined;
  url: string;
  retryAfterMs: number | null;
  links: string[];
}): AcmeProblem {
  let type = "about:blank";
  let detail = "";
  let subproblems: Subproblem[] = [];
  const text = init.body.toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (isRecord(parsed)) {
    if (typeof parsed.type === "string") type = parsed.type;
    if (typeof parsed.detail === "string") detail = parsed.detail;
    if (Array.isArray(parsed.subproblems))
      subproblems = parsed.subproblems.filter(isRecord).map(toSubproblem);
  } else {
    const snippet = printable(text, 120);
    detail = `unexpected ${init.contentType ?? "response"}${snippet ? `: ${snippet}` : ""}`;
  }
  return new AcmeProblem({
    type,
    detail,
    status: init.status,
    subproblems,
    retryAfterMs: init.retryAfterMs,
    url: init.url,
    links: init.links,
  });
}

function toSubproblem(raw: Record<string, unknown>): Subproblem {
  const sub: Subproblem = {
    type: typeof raw.type === "string" ? raw.type : "about:blank",
    detail: typeof raw.detail === "string" ? raw.detail : "",
  };
  const id = raw.identifier;
  if (isRecord(id) && (id.type === "dns" || id.type === "ip") && typeof id.value === "string") {
    sub.identifier = { type: id.type, value: id.value };
  }
  return sub;
}
