/**
 * The frame of the property-based fuzz targets (issue 10 part 5): a fixed seed per target (FUZZ_SEED
 * overrides it, FUZZ_PATH with it replays one shrunk counterexample as fast-check printed it), 10 000
 * cases by default (FUZZ_RUNS overrides it), and one summary line per target:
 * `reliability: fuzz <target> cases=10000 seed=... ok ms=... cpu_ms=...` (wall and CPU time: on a
 * shared machine the first grows with the load, the second does not).
 */
import type { TestContext } from "node:test";
import fc from "fast-check";

export const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);

/** Runs `property` `runs` times from the target's seed; a failure names seed, path and counterexample. */
export async function fuzz<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  target: string,
  seed: number,
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  runs = RUNS,
): Promise<void> {
  const used = process.env.FUZZ_SEED === undefined ? seed : Number(process.env.FUZZ_SEED);
  const path = process.env.FUZZ_PATH;
  const started = Date.now();
  const cpu = process.cpuUsage();
  await fc.assert(property as fc.IAsyncProperty<Ts>, {
    seed: used,
    numRuns: runs,
    ...(path ? { path } : {}),
  });
  const { user, system } = process.cpuUsage(cpu);
  const ms = Date.now() - started;
  const line = `reliability: fuzz ${target} cases=${runs} seed=${used} ok ms=${ms} cpu_ms=${Math.round((user + system) / 1000)}`;
  t.diagnostic(line);
}

/**
 * Calls `fn`; an error that is not an instance of `allowed` (the module's typed error) is thrown on,
 * so the property fails on it. Returns the result, or the typed error that was thrown.
 */
export function onlyThrows<T>(
  allowed: abstract new (...args: never[]) => Error,
  fn: () => T,
): { ok: true; value: T } | { ok: false; error: Error } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (!(err instanceof allowed)) throw err;
    if (err.message.trim() === "") throw new Error(`${allowed.name} without a message`);
    return { ok: false, error: err };
  }
}

/** The async form of onlyThrows. */
export async function onlyRejects<T>(
  allowed: abstract new (...args: never[]) => Error,
  fn: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: Error }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (!(err instanceof allowed)) throw err;
    if (err.message.trim() === "") throw new Error(`${allowed.name} without a message`);
    return { ok: false, error: err };
  }
}
