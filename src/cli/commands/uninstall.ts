import { readdir, rm, rmdir, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { unitFiles } from "../../cron/systemd";
import { installedFiles, isLinkTo, ownProgram, readInstallRecord } from "../../install/self";
import { readFileIfExists } from "../../store/fs-safe";
import { UsageError, WileError } from "../../util/errors";
import type { Command, CommandContext } from "../command";
import { confirmAction } from "../confirm";
import { flag, str } from "../options";
import type { Output } from "../output";
import { uninstallCronCommand } from "./uninstall-cron";

export const uninstallCommand: Command = {
  name: "uninstall",
  summary: "remove wile: its cron line (or systemd timer) and the program install.sh put in place",
  usage: "wile uninstall [--purge [--yes]]",
  description: [
    "Undoes install.sh for this home: removes wile's crontab line (as 'wile uninstall-cron' does)",
    "or its systemd user timer, then the program files in the directory install.sh used (wile,",
    "wile.cjs, their .prev backups, install.json) and the ~/.local/bin/wile link it made.",
    "Certificates, keys, accounts and settings in the home stay, so that services using them keep",
    "working and a new install picks them up again. --purge deletes the whole home as well (it asks",
    "first; --yes confirms without a terminal). Refuses to touch a wile that install.sh did not",
    "install (no install.json next to it).",
  ].join("\n"),
  options: [
    {
      name: "purge",
      type: "boolean",
      help: "also delete the home: certificates, keys, accounts, settings, logs",
    },
    { name: "yes", alias: "y", type: "boolean", help: "confirm --purge without asking" },
  ],
  examples: [
    "wile uninstall",
    "wile uninstall --purge",
    "wile uninstall --purge --yes --home /srv/wile-mail",
  ],
  async run(given) {
    const own = ownProgram();
    const record = await readInstallRecord(own.path);
    if (!record) {
      throw new UsageError(
        `${own.path} was not installed by install.sh (there is no install.json next to it); nothing was changed`,
        {
          hint: "Remove the renewal with 'wile uninstall-cron' and delete the program file yourself.",
        },
      );
    }
    // Without --home or WILE_HOME: the home this program was installed for.
    const explicit = str(given.opts, "home") !== undefined || Boolean(given.env.WILE_HOME);
    const ctx =
      !explicit && typeof record.home === "string" && record.home.startsWith("/")
        ? { ...given, home: record.home }
        : given;
    const { opts, out, home } = ctx;
    const purge = flag(opts, "purge");
    const root = resolve(home);
    if (purge) {
      if (root === "/" || root === resolve(homedir()) || root === resolve(ctx.env.HOME ?? "/")) {
        throw new UsageError(`refusing to delete ${root} with --purge: it is not a directory of wile's own`);
      }
      await confirmAction({
        yes: flag(opts, "yes"),
        action: `delete ${root} with every certificate, key and account in it`,
        plan: [
          `wile uninstall --purge will remove the cron line, the program in ${dirname(own.path)}, and delete ${root} entirely.`,
        ],
        out,
      });
    }

    // The renewal first: a cron line must never outlive the program it runs.
    const cronRemoved = await removeRenewal(ctx);

    const removed: string[] = [];
    const dir = dirname(own.path);
    if (
      typeof record.link === "string" &&
      (await isLinkTo(record.link, record.program ?? join(dir, "wile")))
    ) {
      await unlink(record.link);
      removed.push(record.link);
    }
    for (const f of [...new Set([own.path, ...installedFiles(dir)])]) {
      try {
        await unlink(f);
        removed.push(f);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
    if ((await readdir(dir).catch(() => ["?"])).length === 0) await rmdir(dir).catch(() => {});
    for (const f of removed) out.logger.info(`Removed ${f}`);

    if (purge) {
      await rm(root, { recursive: true, force: true });
      out.logger.info(`Deleted ${root} (certificates, keys, accounts, settings, logs).`);
    } else {
      // The program's compile cache (written by the loader of wile.cjs, scripts/lib/bundle.mjs) goes
      // with the program; the loader writes none for this command.
      await rm(join(root, "cache"), { recursive: true, force: true });
      out.logger.info(
        `Kept ${root}: certificates, accounts and settings (wile uninstall --purge deletes them).`,
      );
    }
    if (out.jsonMode) out.json({ ok: true, removed, cron: cronRemoved, purged: purge ? root : null });
    return 0;
  },
};

/** Runs uninstall-cron itself (its messages, not its JSON) for the crontab and, if present, the systemd timer. */
async function removeRenewal(ctx: CommandContext): Promise<string[]> {
  const sub: Output = {
    logger: ctx.out.logger,
    quiet: ctx.out.quiet,
    attachLog: () => {},
    print: (t) => ctx.out.logger.info(t),
    json: () => {},
    error: (m, h) => ctx.out.error(m, h),
    jsonMode: false,
    verbose: ctx.out.verbose,
  };
  const done: string[] = [];
  try {
    await uninstallCronCommand.run({ ...ctx, argv: [], opts: { _: [] }, out: sub });
    done.push("crontab");
  } catch (e) {
    // No crontab program: there is no line to remove; anything else stops the uninstall.
    if (!(e instanceof WileError && /no crontab program/.test(e.message))) throw e;
  }
  const timer = unitFiles({ minute: 0, hours: [0, 12] }, ["wile"], ctx.home, ctx.env).timerPath;
  if ((await readFileIfExists(timer)) !== null) {
    await uninstallCronCommand.run({ ...ctx, argv: ["--systemd"], opts: { _: [], systemd: true }, out: sub });
    done.push("systemd");
  }
  return done;
}
