/**
 * dns-persist-01 (draft-ietf-acme-dns-persist-02, CA/B Forum ballot SC-088): one TXT record
 * `_validation-persist.<name>`, set once by the operator, names the CA and the ACME account:
 *
 *     _validation-persist.example.com. IN TXT "letsencrypt.org; accounturi=<...>; policy=wildcard"
 *
 * The value is an RFC 8659 issue-value: an issuer domain name the CA announces, then `tag=value`
 * parameters: `accounturi` (required), `policy=wildcard` (the record also covers *.name and
 * subdomains), `persistUntil=<Unix seconds>` (the record stops counting then); unknown tags are
 * ignored. wile never writes this record: `wile dns-persist` prints it, and the solver here only
 * checks that it is in place before the CA is asked.
 *
 * Which accounturi the CA expects depends on the draft it follows:
 * - draft -02 (a directory `meta.accountHashPrefix`): a hashed URI,
 *   `<prefix>sha-256/<base64url(SHA-256(len(domain) || domain || thumbprint || account URL))>`,
 *   bound to the record's domain (or to `*`, the opt-out the CA must accept too);
 * - drafts -00/-01 (no prefix; what Let's Encrypt, Pebble and lego shipped first): the account
 *   URL itself, or the challenge's own `accounturi` when the CA sends one.
 * Issuer domain names come from the challenge (`issuerDomainNames`, in -00/-01
 * `issuer-domain-names`) and, before any order, from the directory's `meta.issuerDomainNames`, else
 * `meta.caaIdentities` (-00/-01 let CAs draw them from there).
 */
import { createHash } from "node:crypto";
import type { ChallengeContext, Solver } from "../acme/solver";
import type { DnsServer } from "../dns/transport";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { isRecord, printable } from "../util/text";

export const PERSIST_LABEL = "_validation-persist";

/** The record name (no trailing dot) for a name; `*.x` uses x's record (with policy=wildcard). */
export function persistRecordName(name: string): string {
  return `${PERSIST_LABEL}.${persistBase(name)}`;
}

/** The name a record is for: lower case, no trailing dot, no `*.`. */
export function persistBase(name: string): string {
  return name.replace(/\.$/, "").replace(/^\*\./, "").toLowerCase();
}

/**
 * The propagation check of issue 11 part 2 (src/dns/propagation.ts): waits until `fqdn`'s TXT
 * values satisfy `accept` on the zone's servers (or `servers`). `accept` returns undefined when the
 * values will do, else what is wrong with them (shown when it gives up). Throws WileError then.
 */
export type WaitForTxt = (
  fqdn: string,
  accept: (values: string[]) => string | undefined,
  opts: { servers?: DnsServer[]; timeoutMs: number; deadline?: number; logger: Logger; what: string },
) => Promise<void>;

/** How long the solver waits for the record before telling the operator to create it. */
export const PERSIST_CHECK_TIMEOUT_MS = 60_000;

/** What the directory says about dns-persist-01 (draft -02 3.2 and 4.1), checked. */
export interface PersistDirectoryInfo {
  /** Issuer domain names for a record made before any order; [] when the CA announces none. */
  issuerDomainNames: string[];
  /** Where they came from. */
  source: "issuerDomainNames" | "caaIdentities" | "none";
  /** Draft -02's prefix of hashed account URIs; undefined for a CA of drafts -00/-01. */
  accountHashPrefix: string | undefined;
  /** meta.caaIdentities, normalized, when conforming ("I" of draft -02 3.2). */
  caaIdentities?: string[];
}

/** Draft -02 3.1: a lowercase A-label name, no trailing dot, at most 253 octets. */
export function isNormalIssuerName(s: unknown): s is string {
  return (
    typeof s === "string" &&
    s.length > 0 &&
    s.length <= 253 &&
    /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/.test(s)
  );
}

/** 1 to 10 normalized names (draft -02 3.1), else undefined. */
function issuerList(v: unknown): string[] | undefined {
  if (!Array.isArray(v) || v.length === 0 || v.length > 10 || !v.every(isNormalIssuerName)) return undefined;
  return v as string[];
}

/** The directory's `meta`, read for dns-persist-01; nonconforming fields count as absent (draft -02 3.2). */
export function persistDirectoryInfo(meta: unknown): PersistDirectoryInfo {
  const m = isRecord(meta) ? meta : {};
  const prefix =
    typeof m.accountHashPrefix === "string" && /^https?:\/\/[\x21-\x3a\x3c-\x7e]+$/.test(m.accountHashPrefix)
      ? m.accountHashPrefix
      : undefined;
  const announced = issuerList(m.issuerDomainNames);
  const caa = Array.isArray(m.caaIdentities)
    ? issuerList(m.caaIdentities.map((s) => (typeof s === "string" ? s.toLowerCase().replace(/\.$/, "") : s)))
    : undefined;
  if (announced) {
    return {
      issuerDomainNames: announced,
      source: "issuerDomainNames",
      accountHashPrefix: prefix,
      ...(caa ? { caaIdentities: caa } : {}),
    };
  }
  if (caa) return { issuerDomainNames: caa, source: "caaIdentities", accountHashPrefix: prefix };
  return { issuerDomainNames: [], source: "none", accountHashPrefix: prefix };
}

/**
 * Draft -02 4.1: `<prefix>sha-256/<base64url(SHA-256(len || domain || thumbprint || account URL))>`;
 * `domain` is the record's name (no label, no trailing dot), or "*" for the cross-domain form.
 */
export function hashedAccountUri(
  prefix: string,
  domain: string,
  thumbprint: string,
  accountUrl: string,
): string {
  const name = Buffer.from(domain, "ascii");
  const digest = createHash("sha256")
    .update(Buffer.from([name.length]))
    .update(name)
    .update(Buffer.from(thumbprint, "ascii"))
    .update(Buffer.from(accountUrl, "ascii"))
    .digest("base64url");
  return `${prefix}sha-256/${digest}`;
}

/** This home's account as a record names it. */
export interface PersistAccount {
  url: string;
  /** base64url SHA-256 JWK thumbprint of the account key (RFC 7638). */
  thumbprint: string;
}

/** The accounturi for a new record for `name`: hashed (draft -02) when the CA has a prefix, else the account URL. */
export function recordAccountUri(
  info: Pick<PersistDirectoryInfo, "accountHashPrefix">,
  name: string,
  a: PersistAccount,
): string {
  return info.accountHashPrefix
    ? hashedAccountUri(info.accountHashPrefix, persistBase(name), a.thumbprint, a.url)
    : a.url;
}

/** Every accounturi the CA will take as this account's for `name` (draft -02 4.2; -01: the URL). */
export function acceptedAccountUris(
  info: Pick<PersistDirectoryInfo, "accountHashPrefix">,
  name: string,
  a: PersistAccount,
  fromChallenge?: string,
): string[] {
  if (info.accountHashPrefix) {
    return [
      hashedAccountUri(info.accountHashPrefix, persistBase(name), a.thumbprint, a.url),
      hashedAccountUri(info.accountHashPrefix, "*", a.thumbprint, a.url),
    ];
  }
  return [...new Set([fromChallenge ?? a.url, a.url])];
}

export interface PersistRecordSpec {
  issuerDomainName: string;
  accountUri: string;
  wildcard: boolean;
  /** Unix seconds. */
  persistUntil?: number | undefined;
}

/** The TXT value (the RDATA's text), as the draft's examples write it. */
export function persistRecordValue(r: PersistRecordSpec): string {
  return [
    r.issuerDomainName,
    `accounturi=${r.accountUri}`,
    ...(r.wildcard ? ["policy=wildcard"] : []),
    ...(r.persistUntil !== undefined ? [`persistUntil=${r.persistUntil}`] : []),
  ].join("; ");
}

/**
 * One zone-file line: `<fqdn>. IN TXT "..."`, the value cut into strings of at most 255 octets
 * (RFC 1035 3.3.14; draft -02 9.1), which resolvers join again.
 */
export function persistZoneLine(fqdn: string, value: string): string {
  const chunks: string[] = [];
  for (let i = 0; i < value.length; i += 255) chunks.push(value.slice(i, i + 255));
  const quoted = chunks.map((c) => `"${c.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`);
  return `${fqdn}. IN TXT ${quoted.length > 1 ? `( ${quoted.join(" ")} )` : quoted[0]}`;
}

export interface IssueValue {
  issuerDomainName: string;
  /** Tags lower-cased -> values. */
  params: Map<string, string>;
}

/**
 * RFC 8659 4.2 issue-value: `[issuer-domain-name] [";" tag=value *(";" tag=value)]`, spaces and
 * tabs allowed around each part. Returns the parsed value or what is malformed (duplicate tags
 * too: draft -02 9.3.1).
 */
export function parseIssueValue(text: string): IssueValue | string {
  const [head = "", ...rest] = text.split(";");
  const issuerDomainName = head.replace(/^[ \t]+|[ \t]+$/g, "");
  if (!/^[A-Za-z0-9.-]*$/.test(issuerDomainName))
    return `"${printable(issuerDomainName, 80)}" is not a domain name`;
  const params = new Map<string, string>();
  for (const raw of rest) {
    const part = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (part === "" && rest.length === 1) break;
    const m = /^([A-Za-z0-9](?:-*[A-Za-z0-9])*)[ \t]*=[ \t]*([\x21-\x3a\x3c-\x7e]*)$/.exec(part);
    if (!m) return `"${printable(part, 80)}" is not tag=value`;
    const tag = (m[1] as string).toLowerCase();
    if (params.has(tag)) return `${m[1]} appears twice`;
    params.set(tag, m[2] as string);
  }
  return { issuerDomainName, params };
}

export interface PersistWant {
  /** Issuer domain names the CA takes (the challenge's). */
  issuers: string[];
  /** accounturi values the CA takes as this account's. */
  accountUris: string[];
  /** The authorization is for *.name: the record needs policy=wildcard. */
  wildcard: boolean;
  /** Epoch ms. */
  now: number;
}

/**
 * Looks through the TXT values at `_validation-persist.<name>` as the CA will (draft -02 4.2,
 * 4.3.2): undefined when one of them will do, else why none does (the closest miss).
 */
export function checkPersistRecords(values: string[], want: PersistWant): string | undefined {
  if (values.length === 0) return "there is no TXT record";
  const issuers = new Set(want.issuers.map((s) => s.toLowerCase()));
  const misses: string[] = [];
  for (const value of values) {
    const parsed = parseIssueValue(value);
    if (typeof parsed === "string") {
      misses.push(`"${printable(value, 120)}" is malformed: ${parsed}`);
      continue;
    }
    // Records for other CAs are not ours to judge (draft -02 4.3.2).
    if (!issuers.has(parsed.issuerDomainName.toLowerCase().replace(/\.$/, ""))) continue;
    const why = recordMiss(parsed, want);
    if (!why) return undefined;
    misses.push(`"${printable(value, 200)}" ${why}`);
  }
  if (misses.length > 0) return misses.join("; and ");
  return `no record names this CA (${want.issuers.join(", ")}); found: ${values.map((v) => `"${printable(v, 120)}"`).join(", ")}`;
}

function recordMiss(r: IssueValue, want: PersistWant): string | undefined {
  const uri = r.params.get("accounturi");
  if (uri === undefined) return "has no accounturi";
  if (!want.accountUris.includes(uri)) return "names another account (accounturi differs)";
  if (want.wildcard && r.params.get("policy")?.toLowerCase() !== "wildcard") {
    return "lacks policy=wildcard, which a wildcard name needs";
  }
  const until = r.params.get("persistuntil");
  if (until !== undefined) {
    if (!/^\d+$/.test(until)) return `has persistUntil=${until}, not a Unix timestamp`;
    if (Number(until) * 1000 <= want.now) {
      return `expired at persistUntil=${until} (${new Date(Number(until) * 1000).toISOString()})`;
    }
  }
  return undefined;
}

/** The issuer domain names of a dns-persist-01 challenge, checked as draft -02 3.1/3.2 require. */
export function challengeIssuers(
  challenge: Record<string, unknown>,
  dir: PersistDirectoryInfo,
  name: string,
): string[] {
  const raw = challenge.issuerDomainNames ?? challenge["issuer-domain-names"];
  const list = issuerList(raw);
  const malformed = (why: string) =>
    new WileError(`the CA's dns-persist-01 challenge for ${name} is malformed: ${why}`, {
      hint: "Nothing was asked of the CA. Report this to the CA, or prove the name another way (-w or --dns).",
    });
  if (!list) {
    throw malformed(
      `its issuerDomainNames must be 1 to 10 lowercase domain names (got ${printable(JSON.stringify(raw) ?? "nothing", 200)})`,
    );
  }
  // Only for a CA of draft -02 (it announces issuerDomainNames): the earlier drafts did not tie
  // the challenge's names to the directory's.
  if (dir.source === "issuerDomainNames") {
    const missing = dir.issuerDomainNames.filter((d) => !list.includes(d));
    if (missing.length > 0)
      throw malformed(`the directory announces ${missing.join(", ")}, which it leaves out`);
    const stray = list.filter((c) => dir.caaIdentities && !dir.caaIdentities.includes(c));
    if (stray.length > 0)
      throw malformed(`it names ${stray.join(", ")}, which the directory's caaIdentities do not`);
  }
  return list;
}

export interface DnsPersistSolverOptions {
  /** This home's account (known once the account is set up). */
  account: () => PersistAccount;
  /** The directory's dns-persist-01 fields. */
  directory: () => PersistDirectoryInfo;
  waitForTxt: WaitForTxt;
  /** The certificate's names proved this way: a record printed for x has policy=wildcard when *.x is among them. */
  names?: readonly string[];
  servers?: DnsServer[];
  timeoutMs?: number;
  /** The run's deadline (ms since the epoch): the wait ends then at the latest. */
  deadline?: number;
  logger: Logger;
  now?: () => number;
}

/**
 * dns-persist-01: present() and cleanup() do nothing (the record is the operator's and stays);
 * preflight() waits until `_validation-persist.<name>` holds a record the CA will take, and
 * otherwise fails with the record to create, before the CA is asked.
 */
export class DnsPersistSolver implements Solver {
  readonly type = "dns-persist-01";

  constructor(private readonly opts: DnsPersistSolverOptions) {}

  async present(): Promise<void> {}

  async preflight(ctx: ChallengeContext): Promise<void> {
    const name = ctx.identifier.value;
    const wildcard = ctx.wildcard === true;
    const shown = wildcard ? `*.${name}` : name;
    const challenge: Record<string, unknown> = isRecord(ctx.challenge) ? ctx.challenge : {};
    const dir = this.opts.directory();
    const account = this.opts.account();
    const issuers = challengeIssuers(challenge, dir, shown);
    const fromChallenge = typeof challenge.accounturi === "string" ? challenge.accounturi : undefined;
    const now = this.opts.now ?? Date.now;
    const want = (): PersistWant => ({
      issuers,
      accountUris: acceptedAccountUris(dir, name, account, fromChallenge),
      wildcard,
      now: now(),
    });
    const fqdn = persistRecordName(name);
    let seen: string[] = [];
    try {
      await this.opts.waitForTxt(
        fqdn,
        (values) => {
          seen = values;
          return checkPersistRecords(values, want());
        },
        {
          ...(this.opts.servers ? { servers: this.opts.servers } : {}),
          timeoutMs: this.opts.timeoutMs ?? PERSIST_CHECK_TIMEOUT_MS,
          ...(this.opts.deadline !== undefined ? { deadline: this.opts.deadline } : {}),
          logger: this.opts.logger,
          what: `the dns-persist-01 record for ${shown}`,
        },
      );
    } catch (err) {
      if (!(err instanceof WileError)) throw err;
      const issuer = dir.issuerDomainNames.find((d) => issuers.includes(d)) ?? (issuers[0] as string);
      const needsWildcard = wildcard || (this.opts.names ?? []).includes(`*.${name}`);
      const value = persistRecordValue({
        issuerDomainName: issuer,
        accountUri:
          fromChallenge && !dir.accountHashPrefix ? fromChallenge : recordAccountUri(dir, name, account),
        wildcard: needsWildcard,
      });
      throw new WileError(
        `${err.message}\nCreate this record (it stays; wile never changes it):\n  ${persistZoneLine(fqdn, value)}`,
        {
          hint: `The CA was not asked to validate ${shown}. Add the record at your DNS host (name ${fqdn}, type TXT, value ${value}), or print it with: wile dns-persist -d ${name}${needsWildcard ? " --wildcard" : ""}. Then run the command again.`,
        },
      );
    }
    this.warnIfEnding(fqdn, seen, want());
  }

  async cleanup(): Promise<void> {}

  /** Draft -02 9.4: warn when the record's persistUntil ends within 30 days (renewals would fail). */
  private warnIfEnding(fqdn: string, values: string[], want: PersistWant): void {
    for (const v of values) {
      const p = parseIssueValue(v);
      if (typeof p === "string" || !want.issuers.includes(p.issuerDomainName.toLowerCase())) continue;
      if (recordMiss(p, want)) continue;
      const until = p.params.get("persistuntil");
      if (until === undefined) return;
      const ms = Number(until) * 1000;
      if (ms - want.now < 30 * 86_400_000) {
        this.opts.logger.warn(
          `${fqdn} stops counting at ${new Date(ms).toISOString()} (persistUntil); renewals after that fail unless the record is replaced (wile dns-persist --persist-until prints a new one)`,
        );
      }
      return;
    }
  }
}
