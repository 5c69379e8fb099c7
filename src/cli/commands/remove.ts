import { lstat, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { lockedError } from "../../flow/cert-lock";
import { CertStore, utcStamp } from "../../store/certs";
import { ensureDir, fsyncDir } from "../../store/fs-safe";
import { acquireLock } from "../../store/lock";
import { UsageError } from "../../util/errors";
import type { Command } from "../command";
import { confirmAction } from "../confirm";
import { flag, type OptionSpec } from "../options";

const OPTIONS: OptionSpec[] = [
  {
    name: "purge",
    type: "boolean",
    help: "delete the certificate's directory (keys included) instead of archiving it",
  },
  {
    name: "yes",
    alias: "y",
    type: "boolean",
    help: "do not ask for confirmation (required without a terminal)",
  },
];

/** `<home>/removed/`: outside certs/, so neither `wile list` nor `wile cron` sees what is there. */
export function removedDir(home: string): string {
  return join(home, "removed");
}

/**
 * Takes certs/<name> out of wile's care in one atomic rename: to removed/<name>-<UTC stamp>/, or
 * with purge to removed/.purge-<name>-<stamp> which is then deleted (an interrupted delete leaves
 * a leftover there, never a half-removed certs/<name>). Holds the certificate's lock meanwhile,
 * so a running renewal of it is never cut short. Returns where the directory went (null: purged).
 */
export async function removeCertificate(
  home: string,
  name: string,
  opts: { purge: boolean; now?: Date },
): Promise<string | null> {
  const store = new CertStore(home);
  const dir = store.dir(name);
  const lock = await acquireLock(store.lockPath(name), `wile remove ${name}`);
  if (!lock) throw await lockedError(store.lockPath(name), `${name} is being worked on`);
  try {
    const removed = removedDir(home);
    await ensureDir(removed);
    const stamp = utcStamp(opts.now ?? new Date());
    let dest = "";
    for (let n = 1; ; n++) {
      dest = join(removed, `${opts.purge ? ".purge-" : ""}${name}-${stamp}${n > 1 ? `-${n}` : ""}`);
      if (!(await exists(dest))) break;
    }
    await rename(dir, dest);
    await fsyncDir(dirname(dir));
    if (!opts.purge) return dest;
    await rm(dest, { recursive: true, force: true });
    return null;
  } finally {
    await lock.release();
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

export const removeCommand: Command = {
  name: "remove",
  summary: "stop renewing a certificate and archive (or --purge) its files",
  usage: "wile remove NAME [--purge] [--yes]",
  description: [
    "Takes NAME out of wile's care: cron no longer renews it and 'wile list' no longer shows it.",
    "Its directory moves in one step to ~/.wile/removed/NAME-<UTC time>/ (keys included, mode",
    "kept), or is deleted with --purge. Services that read its files must be pointed elsewhere",
    "first. The certificate is not revoked (see 'wile revoke'). Asks for confirmation on a",
    "terminal; without one, --yes is required (exit 2 otherwise, nothing done).",
  ].join("\n"),
  options: OPTIONS,
  logs: true,
  examples: ["wile remove old.example.com", "wile remove old.example.com --purge --yes"],
  async run(ctx) {
    const { out, home, opts } = ctx;
    const [name, ...extra] = opts._;
    if (name === undefined || extra.length > 0) {
      throw new UsageError(
        name === undefined ? "which certificate? no NAME given" : `unexpected argument "${extra[0]}"`,
        {
          hint: "Example: wile remove old.example.com (names: wile list)",
        },
      );
    }
    const store = new CertStore(home);
    const dir = store.dir(name);
    const st = await lstat(dir).catch(() => null);
    if (!st?.isDirectory()) {
      throw new UsageError(`no certificate named "${name}" in ${home}`, {
        hint: "See the names with: wile list",
      });
    }
    const purge = flag(opts, "purge");
    await confirmAction({
      yes: flag(opts, "yes"),
      action: purge ? `delete ${name} for good` : `stop renewing ${name}`,
      out,
      plan: [
        `This stops renewing ${name} and ${
          purge
            ? `deletes ${dir} with its private keys and every archived version (no undo).`
            : `moves ${dir} to ${removedDir(home)}/${name}-<UTC time>/.`
        }`,
        `Services reading ${dir}/fullchain.pem or privkey.pem will no longer find them: reconfigure them first.`,
        "The certificate is not revoked; it stays valid until it expires (see wile revoke).",
      ],
    });
    const dest = await removeCertificate(home, name, { purge });
    if (out.jsonMode) out.json({ name, removed: true, purged: purge, ...(dest ? { archivedTo: dest } : {}) });
    else
      out.logger.info(
        dest ? `Removed ${name}; its files are in ${dest}` : `Removed ${name} and deleted its files`,
      );
    return 0;
  },
};
