/**
 * A home of many certificates without a CA: one real certificate of `template` written again under
 * many names, `c00000-<name>` ...: its files are read once and written into each directory
 * (archive/<stamp>/ with .complete, hard links to the first copy's after it, the `current` and
 * stable links, renewal.json with `name` rewritten, and its state.json, so that the ARI check time
 * lies ahead as in the template). About a
 * second per 10 000 certificates on a 2-core machine. For bench/cron-scale.ts and the cron e2e tests.
 */
import {
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

const STABLE = ["privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"];

/**
 * Makes `dest` a wile home (or adds to it) holding the accounts of `template` and `n` copies of its
 * certificate `name` (which a `wile cron` in `template` has checked once, so that its state.json is
 * current), named `<prefix><00000 ... n-1>-<name>`; returns the names.
 */
export function cloneHome(template: string, name: string, n: number, dest: string, prefix = "c"): string[] {
  const src = join(template, "certs", name);
  const stamp = readlinkSync(join(src, "current")).replace(/^archive\//, "");
  const version = Object.fromEntries(
    readdirSync(join(src, "archive", stamp)).map((f) => [f, readFileSync(join(src, "archive", stamp, f))]),
  );
  const renewal = JSON.parse(readFileSync(join(src, "renewal.json"), "utf8")) as { name: string };
  const state = readFileSync(join(src, "state.json"));
  mkdirSync(join(dest, "certs"), { recursive: true, mode: 0o700 });
  // Into a home that has them already, the accounts are left as they are (a copy would be a change).
  if (!existsSync(join(dest, "accounts")))
    cpSync(join(template, "accounts"), join(dest, "accounts"), { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const copy = `${prefix}${String(i).padStart(5, "0")}-${name}`;
    const dir = join(dest, "certs", copy);
    const v = join(dir, "archive", stamp);
    mkdirSync(v, { recursive: true, mode: 0o700 });
    // The first copy's version files are written, the others are hard links to them: no data to
    // write, which is what makes 10 000 copies cheap (wile never writes a version file in place).
    const first = names[0] === undefined ? undefined : join(dest, "certs", names[0], "archive", stamp);
    for (const [f, data] of Object.entries(version)) {
      if (first) linkSync(join(first, f), join(v, f));
      else writeFileSync(join(v, f), data, { mode: f === "privkey.pem" ? 0o600 : 0o644 });
    }
    symlinkSync(`archive/${stamp}`, join(dir, "current"));
    for (const f of STABLE) symlinkSync(`current/${f}`, join(dir, f));
    writeFileSync(join(dir, "renewal.json"), `${JSON.stringify({ ...renewal, name: copy }, null, 2)}\n`, {
      mode: 0o600,
    });
    writeFileSync(join(dir, "state.json"), state);
    names.push(copy);
  }
  return names;
}
