import { CertStore } from "../store/certs";
import { ensureDir } from "../store/fs-safe";
import { acquireLock, describeLockHolder, type Lock } from "../store/lock";
import { homeLayout } from "../store/paths";
import { notWritable } from "../store/writable";
import { WileError } from "../util/errors";
import { onInterrupt } from "../util/interrupt";

/** Another wile run holds the certificate's lock: nothing was done (and nothing is recorded). */
export class CertificateBusyError extends WileError {}

/**
 * Runs `work` holding certificate `name`'s lock, so that deciding, obtaining, installing,
 * deploying and recording state.json are one step no other wile run interleaves with. `command`
 * ("wile cron") is what a run that finds the lock held is told. The lock is released on an
 * interrupt too; after kill -9 the next run takes it over (see store/lock.ts).
 */
export async function withCertificateLock<T>(
  home: string,
  name: string,
  command: string,
  work: () => Promise<T>,
): Promise<T> {
  const layout = homeLayout(home);
  const path = new CertStore(home).lockPath(name);
  let lock: Lock | null;
  try {
    await ensureDir(layout.home);
    await ensureDir(layout.certs);
    lock = await acquireLock(path, command);
  } catch (err) {
    throw (
      (await notWritable(err, "wile could not take the certificate's lock there; nothing was done")) ?? err
    );
  }
  if (!lock) throw await lockedError(path, `${name} is being worked on`);
  const unregister = onInterrupt(() => lock.release());
  try {
    return await work();
  } finally {
    unregister();
    await lock.release();
  }
}

/** "<what> by wile cron (pid 1234, since ...); nothing was done": who holds the lock at `path`. */
export async function lockedError(path: string, what: string): Promise<CertificateBusyError> {
  const holder = await describeLockHolder(path);
  return new CertificateBusyError(
    `${what} by ${holder ?? "another wile process (which has just finished)"}; nothing was done`,
    {
      hint: `Wait for it to finish and try again. The lock is ${path}; one left by a process that has ended is taken over by the next run.`,
    },
  );
}
