/**
 * One rule for tests that need something this machine may lack (root, a program, a built binary):
 * outside CI the test is skipped with the reason; under CI (CI=true or CI=1, as scripts/test.sh
 * sets it) a missing component is a failure naming the reason, never a skip.
 */

const ci = process.env.CI === "true" || process.env.CI === "1";

/**
 * `reason`: why the test cannot run here, or false (or undefined) when it can. Returns the reason
 * to skip with (for node:test's `skip` option or `t.skip`), or false to run; under CI it throws
 * instead, so the suite, test or file that asked fails with the reason.
 */
export function skipUnlessAvailable(reason: string | false | undefined): string | false {
  if (!reason) return false;
  if (ci) throw new Error(`cannot run under CI: ${reason}`);
  return reason;
}
