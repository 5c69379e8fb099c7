import { constants } from "node:fs";
import { access, chmod, lstat, mkdir, open, readlink, realpath, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { ChallengeContext, Solver } from "../acme/solver";
import { currentUser } from "../store/file-errors";
import type { WebrootJournal } from "../store/leftovers";
import { UsageError, WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { checkServed } from "./preflight-fetch";
import type { ResolveRule } from "./resolve";

const TOKEN = /^[A-Za-z0-9_-]+$/;
const CHALLENGE_DIR = [".well-known", "acme-challenge"] as const;

/**
 * Check a webroot before anything is contacted: it must exist, be a directory and be writable by
 * this user (or its deepest existing part of .well-known/acme-challenge must be). Returns its real
 * absolute path.
 */
export async function checkWebroot(path: string): Promise<string> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => null);
  if (!st) {
    throw new UsageError(`Webroot ${abs} does not exist.`, {
      hint: `Create it (mkdir -p ${abs}) or pass with -w the directory your web server serves for this name.`,
    });
  }
  if (!st.isDirectory()) {
    throw new UsageError(`Webroot ${abs} is a file, not a directory.`, {
      hint: "Pass with -w the directory your web server serves as document root for this name.",
    });
  }
  for (let attempt = 1; ; attempt++) {
    let deepest = abs;
    for (const part of CHALLENGE_DIR) {
      const next = join(deepest, part);
      const st = await stat(next).catch(() => null);
      if (!st && (await lstat(next).catch(() => null))?.isSymbolicLink()) {
        const { message, hint } = await danglingLink(next);
        throw new UsageError(message, { hint });
      }
      if (!st?.isDirectory()) break;
      deepest = next;
    }
    try {
      await access(deepest, constants.W_OK | constants.X_OK);
      return realpath(abs);
    } catch (e) {
      // Another wile removed its empty challenge directory right after the walk: walk again.
      if ((e as NodeJS.ErrnoException).code === "ENOENT" && deepest !== abs && attempt < 5) continue;
      const user = currentUser();
      throw new UsageError(`Webroot ${deepest} is not writable by user ${user}.`, {
        hint: `Fix its ownership or permissions (e.g. chown ${user} ${deepest}), or run wile as the user that owns it.`,
      });
    }
  }
}

/** What to say of `link`, a symbolic link to nothing, in the webroot's challenge path. */
async function danglingLink(link: string): Promise<{ message: string; hint: string }> {
  const target = await readlink(link).catch(() => "?");
  return {
    message: `${link} is a symbolic link to ${target}, which does not exist.`,
    hint: `Create the directory it points to (mkdir -p ${resolve(dirname(link), target)}), or remove the link (rm ${link}) and wile creates a directory there.`,
  };
}

export interface WebrootSolverOptions {
  /** identifier value -> webroot directory */
  webroots: Map<string, string>;
  logger: Logger;
  /** Fetch the file back before the CA does; false to skip (--no-preflight). */
  preflight?: { resolve: ResolveRule[]; timeoutMs?: number } | false;
  /** Where every file and directory is recorded before it is made (src/store/leftovers.ts). */
  journal?: WebrootJournal;
}

/**
 * http-01 by writing `<webroot>/.well-known/acme-challenge/<token>` for a web server that already
 * serves the webroot. Writes nothing outside the webroot: the challenge directory's real path must
 * stay inside the webroot's real path, and the file is opened with O_EXCL|O_NOFOLLOW.
 */
export class WebrootSolver implements Solver {
  readonly type = "http-01";
  /** token file per identifier+token, and directories this solver created (removed when empty). */
  private readonly files = new Map<string, string>();
  private readonly createdDirs = new Set<string>();

  constructor(private readonly opts: WebrootSolverOptions) {}

  async present(ctx: ChallengeContext): Promise<void> {
    checkToken(ctx.token);
    const webroot = this.webrootFor(ctx);
    const root = await realpath(webroot).catch((e: NodeJS.ErrnoException) => {
      throw new WileError(`Webroot ${webroot} for ${ctx.identifier.value} is not usable: ${e.message}.`, {
        hint: `Create it, or pass with -w the directory your web server serves for ${ctx.identifier.value}.`,
      });
    });
    // Another wile (cron renews certificates in parallel, often into one webroot) removes the
    // challenge directory it created once it is empty: if that happens between finding the
    // directory and writing the file, a step fails with ENOENT. Walk and write again.
    for (let attempt = 1; ; attempt++) {
      let file: string;
      try {
        let dir = root;
        for (const part of CHALLENGE_DIR) {
          dir = await this.enterDir(root, join(dir, part), webroot);
        }
        file = join(dir, ctx.token);
        await this.opts.journal?.addFile(file, ctx.keyAuthorization);
        await writeTokenFile(file, ctx.keyAuthorization);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT" && attempt < 10) continue;
        throw e;
      }
      this.files.set(key(ctx), file);
      this.opts.logger.debug(`Wrote ${file}`);
      return;
    }
  }

  async preflight(ctx: ChallengeContext): Promise<void> {
    if (this.opts.preflight === false) return;
    checkToken(ctx.token);
    const { resolve: rules = [], timeoutMs = 5000 } = this.opts.preflight ?? {};
    const { value } = ctx.identifier;
    const got = await checkServed(ctx, { resolve: rules, timeoutMs }, this.opts.logger);
    if (!got) return;
    throw new WileError(
      `Preflight for ${value} failed: ${got.url} answered ${got.answer} instead of the challenge written to webroot ${this.webrootFor(ctx)}.`,
      {
        hint:
          `The web server for ${value} does not serve this webroot: check the server's root for ` +
          "/.well-known/acme-challenge/ or pass the right -w; or --no-preflight if you are sure.",
      },
    );
  }

  async cleanup(ctx: ChallengeContext): Promise<void> {
    const file = this.files.get(key(ctx));
    if (file !== undefined) {
      const gone = await unlink(file).then(
        () => true,
        (e: NodeJS.ErrnoException) => {
          this.warnUnlessGone(e, file);
          return e.code === "ENOENT";
        },
      );
      this.files.delete(key(ctx));
      if (gone) await this.forget(() => this.opts.journal?.removeFile(file));
    }
    // Deepest first; a directory still holding another token (or anything else) stays.
    for (const dir of [...this.createdDirs].sort((a, b) => b.length - a.length)) {
      try {
        await rmdir(dir);
        this.createdDirs.delete(dir);
        await this.forget(() => this.opts.journal?.removeDir(dir));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT") {
          this.createdDirs.delete(dir);
          await this.forget(() => this.opts.journal?.removeDir(dir));
        } else if ((code === "ENOTEMPTY" || code === "EEXIST") && this.files.size === 0) {
          // Our last token is gone and another run's (or the operator's file) is still in it: that
          // run or nobody removes it. An empty directory left in a webroot is harmless; the record
          // goes, so that a clean run leaves none behind.
          this.createdDirs.delete(dir);
          await this.forget(() => this.opts.journal?.removeDir(dir));
        } else if (code !== "ENOTEMPTY" && code !== "EEXIST") {
          this.warnUnlessGone(e as NodeJS.ErrnoException, dir);
        }
      }
    }
  }

  private webrootFor(ctx: ChallengeContext): string {
    const webroot = this.opts.webroots.get(ctx.identifier.value);
    if (webroot === undefined) {
      throw new WileError(`No webroot configured for ${ctx.identifier.value}.`, {
        hint: "Pass -w <dir> for every name (a -w applies to the -d names that follow it).",
      });
    }
    return webroot;
  }

  /** Create `dir` (0755) if missing; in any case its real path must stay inside `root`. */
  private async enterDir(root: string, dir: string, webroot: string): Promise<string> {
    const st = await lstat(dir).catch(() => null);
    if (!st) {
      await this.opts.journal?.addDir(dir);
      try {
        await mkdir(dir, { mode: 0o755 });
        await chmod(dir, 0o755);
        this.createdDirs.add(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        // Another run made it in between: not ours to remove.
        await this.forget(() => this.opts.journal?.removeDir(dir));
      }
    }
    const real = await realpath(dir).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT" || !st?.isSymbolicLink()) throw e;
      const { message, hint } = await danglingLink(dir);
      throw new WileError(`Refusing to write the challenge: ${message}`, { hint });
    });
    if (real !== root && !real.startsWith(root + sep)) {
      throw new WileError(
        `Refusing to write the challenge: ${dir} leads outside the webroot ${webroot} (to ${real}).`,
        {
          hint: `Make ${dir} a real directory inside the webroot, or pass the webroot it points into with -w.`,
        },
      );
    }
    if (!(await stat(real)).isDirectory()) {
      throw new WileError(`Refusing to write the challenge: ${dir} is not a directory.`, {
        hint: `Remove or rename ${dir} so wile can create the directory.`,
      });
    }
    return real;
  }

  /** A journal write after cleanup: a failure only leaves a record the next run finds stale. */
  private async forget(write: () => Promise<void> | undefined): Promise<void> {
    await write()?.catch((e: Error) =>
      this.opts.logger.warn(`Could not update the webroot record: ${e.message}`),
    );
  }

  private warnUnlessGone(e: NodeJS.ErrnoException, path: string): void {
    if (e.code !== "ENOENT") this.opts.logger.warn(`Could not remove ${path}: ${e.message}`);
  }
}

function checkToken(token: string): void {
  if (!TOKEN.test(token)) {
    throw new WileError(
      `The CA sent a challenge token that is not base64url: ${JSON.stringify(token.slice(0, 80))}.`,
      {
        hint: "Refusing to use it as a file name. Report this to the CA; try again later.",
      },
    );
  }
}

/** Write `content` to a new file (0644 whatever the umask), never through a symlink. */
async function writeTokenFile(file: string, content: string): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, flags, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    if ((await lstat(file)).isDirectory()) {
      throw new WileError(`Refusing to write the challenge: ${file} is a directory.`, {
        hint: `Remove it (rmdir ${file}, or move it away): wile writes the challenge file there.`,
      });
    }
    // Left over from an interrupted run for the same challenge: remove the entry (not what it points to).
    await unlink(file);
    fh = await open(file, flags, 0o644);
  }
  try {
    await fh.chmod(0o644);
    await fh.writeFile(content);
  } finally {
    await fh.close();
  }
}

function key(ctx: ChallengeContext): string {
  return `${ctx.identifier.value}\0${ctx.token}`;
}
