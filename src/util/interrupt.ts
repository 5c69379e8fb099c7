/**
 * Work to undo when the process is told to stop (Ctrl-C, kill, a closed terminal): challenge files
 * in a webroot, a lock. Without it an interrupted run would leave them behind.
 */
type Undo = () => Promise<void>;

const pending = new Set<Undo>();
let installed = false;

/** Registers `undo` to run on SIGINT/SIGTERM/SIGHUP; returns the function that unregisters it. */
export function onInterrupt(undo: Undo): () => void {
  pending.add(undo);
  return () => {
    pending.delete(undo);
  };
}

const EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** Called once by the entry point: on a signal, runs what is registered (for at most 5 s) and exits. */
export function installInterruptHandlers(write: (line: string) => void): void {
  if (installed) return;
  installed = true;
  for (const signal of Object.keys(EXIT_CODES)) {
    process.once(signal, () => {
      write(`interrupted (${signal}): cleaning up`);
      const all = Promise.allSettled([...pending].map((undo) => undo()));
      const timeout = new Promise((resolve) => setTimeout(resolve, 5000).unref());
      void Promise.race([all, timeout]).then(() => process.exit(EXIT_CODES[signal]));
    });
  }
}
