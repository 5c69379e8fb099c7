/** Test helpers for the crypto tests: run openssl (argv, no shell) and make temp dirs. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs openssl with `args`; returns status and output without throwing. */
export function openssl(args: string[], input?: string): Run {
  const r = spawnSync("openssl", args, { encoding: "utf8", input, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Runs openssl and throws with its stderr unless it exits 0. */
export function opensslOk(args: string[], input?: string): string {
  const r = openssl(args, input);
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A temp dir removed after the test file finishes. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "wile-crypto-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
