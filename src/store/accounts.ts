import { join } from "node:path";
import { UsageError, WileError } from "../util/errors";
import { ensureDir, readFileIfExists, writeFileAtomic, writeFileAtomicNew } from "./fs-safe";
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

/** Accounts per CA: `<home>/accounts/<caDirName>/<name>/account.json` and `account.key` (0600). */
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

  /** The account key PEM, or null when there is none yet. */
  readKey(directoryUrl: string, name?: string): Promise<string | null> {
    return readFileIfExists(join(this.dir(directoryUrl, name), "account.key"));
  }

  /** Store a new account key (0600). Never replaces an existing one: losing it loses the account. */
  async writeKey(directoryUrl: string, pem: string, name?: string): Promise<void> {
    const dir = this.dir(directoryUrl, name);
    await this.ensureDirs(dir);
    const file = join(dir, "account.key");
    try {
      await writeFileAtomicNew(file, pem, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      throw new WileError(`An account key already exists at ${file}; not replacing it.`, {
        hint: "Use the existing account, pick another name with --account, or move the old key away yourself.",
      });
    }
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
      throw bad(`not valid JSON (${(e as Error).message})`);
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
