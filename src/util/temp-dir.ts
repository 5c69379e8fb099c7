import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onInterrupt } from "./interrupt";

/**
 * Runs `work` with a fresh private directory (0700, under $TMPDIR or /tmp, named `<prefix>XXXXXX`)
 * for files such as a copy of a private key or a PKCS#12 file. The directory and all in it are
 * removed when `work` ends, whether it succeeds or throws, and also when wile is interrupted
 * (SIGINT, SIGTERM, SIGHUP) before that: no key is ever left behind in a temp directory.
 */
export async function withPrivateTempDir<T>(prefix: string, work: (dir: string) => Promise<T>): Promise<T> {
  // mkdtemp creates the directory with mode 0700 (narrowed further by the umask, never widened).
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const remove = () => rm(dir, { recursive: true, force: true });
  const unregister = onInterrupt(remove);
  try {
    return await work(dir);
  } finally {
    unregister();
    await remove();
  }
}
