import { link, rename, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { UsageError, WileError } from "../util/errors";
import { printable } from "../util/text";
import { utcStamp } from "./certs";
import { ensureDir, fsyncDir, readFileIfExists, writeFileAtomic, writeFileAtomicNew } from "./fs-safe";
import { caDirName, homeLayout, isSafeComponent } from "./paths";

/** What wile remembers about an ACME account (account.json). The key lives next to it. */
export interface AccountRecord {
  url: string;
  directoryUrl: string;
  contact: string[];
  createdAt: string;
  keyType: string;
  eabKid?: string;
}

export const DEFAULT_ACCOUNT = "default";

const KEY = "account.key";
/** Where a rollover keeps the new key until the CA has accepted it. */
const PENDING_KEY = "account.key.next";

/**
 * Accounts per CA, and every file move on them:
 * ```
 * <home>/accounts/<caDirName>/
 *   <name>/account.json                 the record (0600)
 *   <name>/account.key                  the key (0600): losing it loses the account
 *   <name>/account.key.next             a rollover's new key, until the CA has taken it
 *   <name>/account.key.old-<UTC stamp>  keys replaced by a rollover (hard links, kept)
 *   <name>.deactivated-<UTC stamp>/     a deactivated account, moved out of the way
 * ```
 */
export class AccountStore {
  constructor(private readonly home: string) {}

  dir(directoryUrl: string, name = DEFAULT_ACCOUNT): string {
    if (!isSafeComponent(name)) {
      throw new UsageError(`Invalid account name "${name}".`, {
        hint: "Use a plain name such as default or work: no '/', not '.' or '..'.",
      });
    }
    return join(homeLayout(this.home).accounts, caDirName(directoryUrl), name);
  }

  keyFile(directoryUrl: string, name?: string): string {
    return join(this.dir(directoryUrl, name), KEY);
  }

  pendingKeyFile(directoryUrl: string, name?: string): string {
    return join(this.dir(directoryUrl, name), PENDING_KEY);
  }

  /** Where a deactivated account's directory goes; `stamp` is a UTC stamp (or a placeholder to show). */
  deactivatedDir(directoryUrl: string, stamp: string, name?: string): string {
    return `${this.dir(directoryUrl, name)}.deactivated-${stamp}`;
  }

  /** The account key PEM, or null when there is none yet. */
  readKey(directoryUrl: string, name?: string): Promise<string | null> {
    return readFileIfExists(this.keyFile(directoryUrl, name));
  }

  /** Store a new account key (0600). Never replaces an existing one: losing it loses the account. */
  async writeKey(directoryUrl: string, pem: string, name?: string): Promise<void> {
    await this.ensureDirs(this.dir(directoryUrl, name));
    const file = this.keyFile(directoryUrl, name);
    try {
      await writeFileAtomicNew(file, pem, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      throw new WileError(`An account key already exists at ${file}; not replacing it.`, {
        hint: "Use the existing account, pick another name with --account, or move the old key away yourself.",
      });
    }
  }

  /** A rollover's new key, or null when no rollover is pending. */
  readPendingKey(directoryUrl: string, name?: string): Promise<string | null> {
    return readFileIfExists(this.pendingKeyFile(directoryUrl, name));
  }

  /** Keeps a rollover's new key (0600, fsynced) before the CA ever sees it. */
  async writePendingKey(directoryUrl: string, pem: string, name?: string): Promise<void> {
    await writeFileAtomic(this.pendingKeyFile(directoryUrl, name), pem, 0o600);
  }

  /** Forgets a rollover's new key: only once the CA certainly does not know it. */
  async dropPendingKey(directoryUrl: string, name?: string): Promise<void> {
    await unlink(this.pendingKeyFile(directoryUrl, name)).catch(() => {});
  }

  /**
   * Makes the pending key the account key, once the CA has taken it: account.key is kept as
   * account.key.old-<stamp> (a hard link, so account.key never goes missing), then
   * account.key.next is renamed over account.key. Returns the old key's file.
   */
  async promotePendingKey(directoryUrl: string, now: Date, name?: string): Promise<string> {
    const keyFile = this.keyFile(directoryUrl, name);
    let oldKeyFile = `${keyFile}.old-${utcStamp(now)}`;
    for (let n = 2; ; n++) {
      try {
        await link(keyFile, oldKeyFile);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        oldKeyFile = `${keyFile}.old-${utcStamp(now)}-${n}`;
      }
    }
    await rename(this.pendingKeyFile(directoryUrl, name), keyFile);
    await fsyncDir(dirname(keyFile));
    return oldKeyFile;
  }

  /**
   * Moves a deactivated account's directory out of the way (to deactivatedDir), so that wile never
   * signs with it again. Returns where it went.
   */
  async moveDeactivated(directoryUrl: string, now: Date, name?: string): Promise<string> {
    const dir = this.dir(directoryUrl, name);
    const movedTo = this.deactivatedDir(directoryUrl, utcStamp(now), name);
    await rename(dir, movedTo);
    await fsyncDir(dirname(dir));
    return movedTo;
  }

  /** The account record, or null when there is none. A corrupt file is an error naming it. */
  async readRecord(directoryUrl: string, name?: string): Promise<AccountRecord | null> {
    const file = join(this.dir(directoryUrl, name), "account.json");
    const text = await readFileIfExists(file);
    if (text === null) return null;
    const bad = (why: string) =>
      new WileError(`The account file ${file} is unreadable: ${why}.`, {
        hint: `Fix the JSON in ${file} or move it away; keep account.key next to it, that key is the account.`,
      });
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw bad(`not valid JSON (${printable((e as Error).message, 200)})`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("not a JSON object");
    const r = v as Record<string, unknown>;
    for (const f of ["url", "directoryUrl", "createdAt", "keyType"] as const) {
      if (typeof r[f] !== "string") throw bad(`"${f}" must be a string`);
    }
    if (!Array.isArray(r.contact) || !r.contact.every((c) => typeof c === "string")) {
      throw bad(`"contact" must be an array of strings`);
    }
    if (r.eabKid !== undefined && typeof r.eabKid !== "string") throw bad(`"eabKid" must be a string`);
    return r as unknown as AccountRecord;
  }

  async writeRecord(directoryUrl: string, record: AccountRecord, name?: string): Promise<void> {
    const dir = this.dir(directoryUrl, name);
    await this.ensureDirs(dir);
    await writeFileAtomic(join(dir, "account.json"), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  private async ensureDirs(dir: string): Promise<void> {
    const layout = homeLayout(this.home);
    await ensureDir(layout.home);
    await ensureDir(layout.accounts);
    await ensureDir(dir);
  }
}
