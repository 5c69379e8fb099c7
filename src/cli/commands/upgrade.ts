import { unlink } from "node:fs/promises";
import { checkBaseUrl, DEFAULT_DOWNLOAD_URL, downloadVerified } from "../../install/download";
import {
  ownProgram,
  readInstallRecord,
  sha256File,
  swapInto,
  versionOf,
  writeInstallRecord,
} from "../../install/self";
import { WileError } from "../../util/errors";
import { VERSION } from "../../version";
import type { Command } from "../command";
import { flag, str } from "../options";

export const upgradeCommand: Command = {
  name: "upgrade",
  summary: "replace this wile with the newest release (checksum-checked, previous one kept)",
  usage: "wile upgrade [--from URL] [--dry-run]",
  description: [
    "Downloads the release file for this wile (the standalone binary for this CPU, or wile.cjs when",
    "it runs under node) and SHA256SUMS from the download address. The binary comes compressed:",
    "wile-linux-<arch>.xz when xz (or unxz, xzcat) is on PATH, else .gz. It checks the SHA-256 of",
    "what was downloaded before decompressing it, runs the new program once ('version') and only",
    "then puts it in place of the running file with one rename in the same directory. Nothing is",
    "left behind on a failure. The file it replaces is kept next to it as <file>.prev (to go back:",
    "mv wile.prev wile). Certificates, accounts, settings and the crontab line are not touched.",
    "The address: --from, else $WILE_DOWNLOAD_URL, else the one install.sh recorded in install.json",
    `next to the program, else ${DEFAULT_DOWNLOAD_URL}. https:// only (http:// on loopback).`,
  ].join("\n"),
  options: [
    { name: "from", type: "string", arg: "URL", help: "download address (a release folder with SHA256SUMS)" },
    { name: "dry-run", type: "boolean", help: "download and check, say what would change, change nothing" },
  ],
  logs: true,
  examples: ["wile upgrade", "wile upgrade --dry-run", "wile upgrade --from https://example.com/wile/v0.2.0"],
  async run({ opts, out, env }) {
    const own = ownProgram();
    const record = await readInstallRecord(own.path);
    const base = checkBaseUrl(
      str(opts, "from") ?? env.WILE_DOWNLOAD_URL ?? record?.downloadUrl ?? DEFAULT_DOWNLOAD_URL,
    );
    out.logger.info(`Fetching ${own.artifact} from ${base} ...`);
    let fresh: { path: string; sha256: string; file: string };
    try {
      fresh = await downloadVerified(base, own.artifact, own.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
        throw new WileError(`cannot write next to ${own.path} (${code})`, {
          hint: "Run wile upgrade as the user who installed wile (it replaces its own file), or reinstall with install.sh.",
        });
      }
      throw e;
    }
    out.logger.info(`Fetched ${fresh.file}; its SHA-256 matches SHA256SUMS.`);
    const done = (doc: Record<string, unknown>) => {
      if (out.jsonMode) out.json({ ok: true, path: own.path, from: base, file: fresh.file, ...doc });
      return 0;
    };
    try {
      if ((await sha256File(own.path)) === fresh.sha256) {
        out.logger.info(`wile ${VERSION} is up to date (${own.path} is the file ${base} has).`);
        return done({ changed: false, version: VERSION });
      }
      let next: string;
      try {
        next = await versionOf(own.runner, fresh.path);
      } catch (e) {
        throw new WileError(`the downloaded ${own.artifact} does not run here (${(e as Error).message})`, {
          hint: "Nothing was changed. Is it the right file for this machine? Reinstall with install.sh if in doubt.",
        });
      }
      if (flag(opts, "dry-run")) {
        out.logger.info(
          `Would upgrade wile ${VERSION} -> ${next} (${own.path}); dry run, nothing was changed.`,
        );
        return done({ changed: false, dryRun: true, version: VERSION, newVersion: next });
      }
      const backup = await swapInto(fresh.path, own.path);
      if (record && record.downloadUrl !== base)
        await writeInstallRecord(own.path, { ...record, downloadUrl: base });
      out.logger.info(
        `Upgraded wile ${VERSION} -> ${next} (${own.path}); the previous one is kept as ${backup}.`,
      );
      return done({ changed: true, version: next, previousVersion: VERSION, backup });
    } finally {
      await unlink(fresh.path).catch(() => {});
    }
  },
};
