import { chmod, lstat, mkdir, readdir, readlink, rename, rm, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { UsageError, WileError } from "../util/errors";
import { ensureDir, fsyncDir, readFileIfExists, tempPathFor, writeFileAtomic } from "./fs-safe";
import { homeLayout, isSafeComponent } from "./paths";
import { parseRenewalConfig, type RenewalConfig, serializeRenewalConfig } from "./renewal";

/** The four PEM files of one certificate version. */
export interface CertificateFiles {
  privkeyPem: string;
  certPem: string;
  chainPem: string;
  fullchainPem: string;
}

const FILES: ReadonlyArray<[keyof CertificateFiles, string, number]> = [
  ["privkeyPem", "privkey.pem", 0o600],
  ["certPem", "cert.pem", 0o644],
  ["chainPem", "chain.pem", 0o644],
  ["fullchainPem", "fullchain.pem", 0o644],
];
const COMPLETE = ".complete";

/**
 * Certificates, safe against kill -9 at any instant. `<home>/certs/<name>/`:
 * ```
 * renewal.json
 * archive/<UTC stamp, -2, -3 if taken>/privkey.pem (0600) cert.pem chain.pem fullchain.pem .complete
 * current -> archive/<stamp>          relative symlink, replaced atomically (temp link + rename)
 * privkey.pem -> current/privkey.pem  stable paths services read; same for the other three
 * ```
 * A version is written and fsynced completely (`.complete` last) before `current` is switched, so
 * the key and certificate at the stable paths always come from the same version. Versions without
 * `.complete` are leftovers of a crash: ignored, removed by the next install's pruning.
 * Callers serialize installs of one name with acquireLock(lockPath(name)).
 */
export class CertStore {
  constructor(
    private readonly home: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  dir(name: string): string {
    if (!isSafeComponent(name)) {
      throw new UsageError(`Invalid certificate name "${name}".`, {
        hint: "A certificate name is a single path component: no '/', not '.' or '..'.",
      });
    }
    return join(homeLayout(this.home).certs, name);
  }

  /** Lock file for one certificate (next to its directory, so removing the directory keeps it). */
  lockPath(name: string): string {
    return `${this.dir(name)}.lock`;
  }

  /** Make home, certs and the certificate's directory (all 0700). */
  async ensureDirs(name: string): Promise<string> {
    const layout = homeLayout(this.home);
    await ensureDir(layout.home);
    await ensureDir(layout.certs);
    const dir = this.dir(name);
    await ensureDir(dir);
    await ensureDir(join(dir, "archive"));
    return dir;
  }

  /** Write a new version, create missing stable links, switch `current` to it, prune old versions. */
  async install(name: string, files: CertificateFiles, keep = 5): Promise<{ versionDir: string }> {
    for (const [field, file] of FILES) {
      if (typeof files[field] !== "string" || files[field].length === 0) {
        throw new WileError(`Refusing to install certificate "${name}": its ${file} would be empty.`, {
          hint: "The certificate in place was kept. Run the command again; if it keeps failing, report it with -v.",
        });
      }
    }
    const dir = await this.ensureDirs(name);
    const archive = join(dir, "archive");
    const stamp = await makeVersionDir(archive, utcStamp(this.now()));
    const versionDir = join(archive, stamp);
    for (const [field, file, mode] of FILES)
      await writeFileAtomic(join(versionDir, file), files[field], mode);
    await writeFileAtomic(join(versionDir, COMPLETE), "", 0o644);
    await fsyncDir(archive);

    // The stable links first (dangling until the first `current`), so that switching `current`
    // is the one step that makes a version visible, the first one included.
    for (const [, file] of FILES) {
      const stable = join(dir, file);
      const target = `current/${file}`;
      if ((await readlink(stable).catch(() => null)) !== target) await replaceSymlink(stable, target);
    }
    await replaceSymlink(join(dir, "current"), `archive/${stamp}`);
    await fsyncDir(dir);
    await this.prune(name, keep);
    return { versionDir };
  }

  /** The version `current` points to, read as one consistent set; null if none was installed. */
  async readCurrent(name: string): Promise<CertificateFiles | null> {
    const dir = this.dir(name);
    const target = await readlink(join(dir, "current")).catch(() => null);
    if (target === null) return null;
    const out: Partial<CertificateFiles> = {};
    for (const [field, file] of FILES) {
      const text = await readFileIfExists(join(dir, target, file));
      if (text === null) return null;
      out[field] = text;
    }
    return out as CertificateFiles;
  }

  /** Only the current cert.pem (what deciding about renewal needs); null if none was installed. */
  async readCurrentCert(name: string): Promise<string | null> {
    const dir = this.dir(name);
    const target = await readlink(join(dir, "current")).catch(() => null);
    return target === null ? null : readFileIfExists(join(dir, target, "cert.pem"));
  }

  async readRenewal(name: string): Promise<RenewalConfig | null> {
    const file = join(this.dir(name), "renewal.json");
    const text = await readFileIfExists(file);
    return text === null ? null : parseRenewalConfig(text, file);
  }

  async writeRenewal(name: string, cfg: RenewalConfig): Promise<void> {
    const dir = await this.ensureDirs(name);
    // 0600: it can hold a secret the operator gave for renewals to replay (--pfx-password).
    await writeFileAtomic(join(dir, "renewal.json"), serializeRenewalConfig(cfg), 0o600);
  }

  /** The complete versions in archive/, oldest first (for a repair hint when `current` is lost). */
  async completeVersions(name: string): Promise<string[]> {
    const archive = join(this.dir(name), "archive");
    const stamps = (await readdir(archive).catch(() => [] as string[])).sort(compareStamps);
    const out: string[] = [];
    for (const stamp of stamps) if (await exists(join(archive, stamp, COMPLETE))) out.push(stamp);
    return out;
  }

  /** Every certificate directory with a renewal.json or a current link, sorted. */
  async names(): Promise<string[]> {
    const certs = homeLayout(this.home).certs;
    const entries = await readdir(certs, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return [];
      throw e;
    });
    const out: string[] = [];
    for (const e of entries) {
      if (e.isDirectory() && (await isCertDir(join(certs, e.name)))) out.push(e.name);
    }
    return out.sort();
  }

  /** Whether this home has a certificate `name`: a renewal.json or an installed version. */
  async has(name: string): Promise<boolean> {
    return isCertDir(this.dir(name));
  }

  /**
   * Keep the newest `keep` complete versions and the current one; remove the rest, incomplete
   * versions (crash leftovers) and stray temp links/files of interrupted runs.
   */
  async prune(name: string, keep = 5): Promise<string[]> {
    const dir = this.dir(name);
    const archive = join(dir, "archive");
    const current = (await readlink(join(dir, "current")).catch(() => "")).replace(/^archive\//, "");
    const stamps = (await readdir(archive).catch(() => [] as string[])).sort(compareStamps).reverse();
    const removed: string[] = [];
    let kept = 0;
    for (const stamp of stamps) {
      const complete = await exists(join(archive, stamp, COMPLETE));
      if (stamp === current || (complete && kept < Math.max(1, keep))) {
        if (complete) kept++;
        continue;
      }
      // The marker goes first: a run killed in the middle of the rm leaves an incomplete version
      // (ignored, removed by the next prune), never a "complete" one missing its key.
      if (complete) await unlink(join(archive, stamp, COMPLETE));
      await rm(join(archive, stamp), { recursive: true, force: true });
      removed.push(stamp);
    }
    for (const entry of await readdir(dir)) {
      if (entry.startsWith(".") && entry.includes(".tmp-")) await unlink(join(dir, entry)).catch(() => {});
    }
    return removed;
  }
}

/** "20261123T120102Z" for a UTC time. */
export function utcStamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replace(/[-:]/g, "");
}

/** Order stamps by time, then by their -N suffix (so -10 sorts after -9). */
function compareStamps(a: string, b: string): number {
  const [ta = "", na = "1"] = a.split("-");
  const [tb = "", nb = "1"] = b.split("-");
  return ta === tb ? Number(na) - Number(nb) : ta < tb ? -1 : 1;
}

/**
 * Create archive/<stamp> exclusively (0700), suffixed -2, -3, ... past the highest suffix already
 * used for that stamp, so names keep sorting in install order; returns the name used.
 */
async function makeVersionDir(archive: string, stamp: string): Promise<string> {
  let n = 1;
  for (const entry of await readdir(archive)) {
    if (entry === stamp) n = Math.max(n, 2);
    else if (entry.startsWith(`${stamp}-`)) n = Math.max(n, Number(entry.slice(stamp.length + 1)) + 1 || n);
  }
  for (; ; n++) {
    const name = n === 1 ? stamp : `${stamp}-${n}`;
    try {
      await mkdir(join(archive, name), { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw e;
    }
    await chmod(join(archive, name), 0o700);
    return name;
  }
}

/** Point `path` at `target` atomically: a new symlink at a temp name renamed over it. */
async function replaceSymlink(path: string, target: string): Promise<void> {
  const tmp = tempPathFor(path);
  await symlink(target, tmp);
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/** A directory this user cannot look into counts too: `wile list` and cron report it, never skip it. */
async function isCertDir(dir: string): Promise<boolean> {
  for (const entry of ["renewal.json", "current"]) {
    const found = await lstat(join(dir, entry)).then(
      () => true,
      (e: NodeJS.ErrnoException) => e.code !== "ENOENT" && e.code !== "ENOTDIR",
    );
    if (found) return true;
  }
  return false;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
