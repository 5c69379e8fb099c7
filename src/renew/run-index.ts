import { type Dirent, lstatSync, readdirSync, type Stats } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { CertInfo } from "../crypto/x509";
import type { Outcome } from "../flow/lifecycle";
import { AccountStore } from "../store/accounts";
import { CertStore } from "../store/certs";
import {
  certSignature,
  type IndexEntry,
  indexPath,
  readIndex,
  type Signature,
  writeIndex,
} from "../store/cron-index";
import { removeStaleTemps } from "../store/fs-safe";
import { homeLayout } from "../store/paths";
import type { RenewalConfig } from "../store/renewal";
import type { RenewalState } from "../store/state";
import type { Logger } from "../util/log";
import type { Decision } from "./decide";

const DAY = 24 * 60 * 60 * 1000;

/** What a full check of one certificate began with (taken under its lock, before reading anything). */
export interface CheckStart {
  name: string;
  at: number;
  dir: Signature | null;
}

/** What a full check found, for the index: only checks that end "not due" and wrote nothing. */
export interface CheckResult {
  cfg: RenewalConfig;
  cert: CertInfo;
  state: RenewalState;
  decision: Decision;
  outcome: Outcome;
}

/**
 * A run over every certificate of a home with the index of store/cron-index.ts: certificates whose
 * files are as the index recorded and whose next moment (renewal, ARI check, end of a backoff) has
 * not come are reported from the index without reading them; every other one gets the full check
 * of renewOne, which records what it found here. The caller holds cron.lock.
 */
export class RunIndex {
  private readonly next = new Map<string, IndexEntry>();
  private readonly checked = new Set<string>();
  private readonly seen = new Map<string, Stats | null>();

  private constructor(
    private readonly home: string,
    private readonly old: Map<string, IndexEntry>,
    private readonly now: Date,
    /** How far ahead the run looks (nextRun - now): ARI moments before the next run are due now. */
    private readonly aheadMs: number,
    /** Leftover records (webroot-files.json, ...): a certificate with one is checked at every run. */
    private readonly leftoverFiles: string[],
    private readonly logger: Logger,
  ) {}

  static async open(
    home: string,
    logger: Logger,
    now: Date,
    aheadMs: number,
    leftoverFiles: string[],
  ): Promise<RunIndex> {
    return new RunIndex(home, await readIndex(home, logger), now, aheadMs, leftoverFiles, logger);
  }

  /**
   * Every certificate of the home (sorted), split into the outcomes known from the index and the
   * names to check in full. One directory listing and a few stats per certificate.
   */
  async plan(): Promise<{ known: Outcome[]; check: string[]; sweep: string[] }> {
    const certs = homeLayout(this.home).certs;
    let entries: Dirent[];
    try {
      entries = readdirSync(certs, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      entries = [];
    }
    const dirs = entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    // A certificate's lock file is there while a run works on it, or after one was killed: such a
    // certificate is checked in full, which reports the live holder or takes the stale lock over
    // (and removes it), as before the index.
    const locked = new Set(entries.filter((e) => e.name.endsWith(".lock")).map((e) => e.name.slice(0, -5)));
    const store = new CertStore(this.home);
    const t = this.now.getTime();
    const known: Outcome[] = [];
    const check: string[] = [];
    // Where a killed run may have left challenge files or DNS records: every directory the index
    // does not vouch for, a certificate's or not (a first issuance killed leaves no certificate).
    const sweep: string[] = [];
    for (const name of dirs) {
      const e = this.old.get(name);
      if (
        e &&
        t < e.checkAt &&
        !locked.has(name) &&
        certSignature(this.home, name, e.files, this.seen)?.sig === e.sig
      ) {
        this.next.set(name, e);
        known.push({
          name,
          status: e.status,
          reason: e.reason,
          ...(e.renewAt ? { renewAt: e.renewAt } : {}),
          ...(e.explanationURL ? { explanationURL: e.explanationURL } : {}),
        });
      } else {
        sweep.push(name);
        if (await store.has(name)) {
          check.push(name);
          this.checked.add(name);
        }
      }
    }
    this.logger.debug(
      `${check.length} of ${check.length + known.length} certificates checked in full; the others are unchanged and not due (${indexPath(this.home)})`,
    );
    return { known, check, sweep };
  }

  /** Called by renewOne holding the certificate's lock, before it reads anything. */
  begin(name: string): CheckStart {
    return { name, at: Date.now(), dir: certSignature(this.home, name, []) };
  }

  /**
   * Called by renewOne, still holding the lock, when a check ends not due without writing: the
   * certificate goes into the index until its next moment, if nothing changed while it was read,
   * no file it read is younger than the margin of cron-index.ts (RACY_MS: a change within the file
   * system's timestamp granularity could go unseen) and no leftover record waits in its directory.
   */
  done(start: CheckStart, r: CheckResult): void {
    const { name } = start;
    const files = [
      join(new AccountStore(this.home).dir(r.cfg.server, r.cfg.account), "account.json"),
      ...(r.cfg.caBundle ? [resolve(r.cfg.caBundle)] : []),
    ];
    const sig = certSignature(this.home, name, files);
    if (!start.dir || !sig || certSignature(this.home, name, [])?.sig !== start.dir.sig) return;
    if (sig.newest > start.at - sig.margin) return;
    const dir = join(homeLayout(this.home).certs, name);
    if (this.leftoverFiles.some((f) => present(join(dir, f)))) return;
    const checkAt = nextMoment(r, this.now.getTime(), this.aheadMs);
    if (checkAt <= this.now.getTime()) return;
    const o = r.outcome;
    if (o.status !== "not-due" && o.status !== "waiting") return;
    this.next.set(name, {
      sig: sig.sig,
      files,
      checkAt,
      status: o.status,
      reason: o.reason,
      ...(o.renewAt ? { renewAt: o.renewAt } : {}),
      ...(o.explanationURL ? { explanationURL: o.explanationURL } : {}),
    });
  }

  /**
   * Writes the index when it changed (a certificate checked in full, added or removed). A failure
   * to write costs only speed: it is logged, and the next run checks in full again.
   */
  async save(): Promise<void> {
    // A temp file of a run killed while writing the index (once a minute old).
    const temp = `.${basename(indexPath(this.home))}.tmp-`;
    await removeStaleTemps(this.home, (entry) => entry.startsWith(temp));
    let changed = [...this.old.keys()].some((n) => !this.next.has(n));
    for (const name of this.checked) {
      const a = this.old.get(name);
      const b = this.next.get(name);
      if (JSON.stringify(a) !== JSON.stringify(b)) changed = true;
    }
    if (!changed) return;
    try {
      await writeIndex(this.home, this.next);
    } catch (e) {
      this.logger.warn(
        `could not write ${indexPath(this.home)} (${(e as Error).message}); the next run checks every certificate in full again`,
      );
    }
  }
}

/**
 * The first moment at which a full check could find something else than this one did: the
 * renewal moment (less the look-ahead of ARI moments), the next ARI request, the end of a backoff,
 * and the last day before notAfter (when a backoff no longer applies).
 */
function nextMoment(r: CheckResult, now: number, aheadMs: number): number {
  const moments = [r.cert.notAfter.getTime() - DAY];
  if (r.decision.renewAt) moments.push(r.decision.renewAt.getTime() - aheadMs);
  for (const iso of [r.state.ari?.nextCheck, r.state.nextAttempt]) {
    const t = iso ? Date.parse(iso) : Number.NaN;
    if (t > now) moments.push(t);
  }
  return Math.min(...moments);
}

/** Whether something is at `path` (anything but "no such file" counts as there). */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ENOENT";
  }
}
