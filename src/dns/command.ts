/**
 * Running a provider's command for one record (the exec provider's hook, acme.sh's dnsapi script):
 * with a timeout, and on failure a WileError that quotes the command's last output lines (printable,
 * capped) and, for a removal, names the record to remove by hand.
 */
import { WileError } from "../util/errors";
import { describeExit, lastLines, run } from "../util/spawn";
import type { DnsRecord } from "./provider";

export async function runRecordCommand(
  argv: string[],
  o: {
    timeoutMs: number;
    env: Record<string, string | undefined>;
    /** How messages name the run: "the DNS hook (/bin/hook present _acme-challenge.example.com.)". */
    what: string;
    /** Adding the record (else removing it). */
    add: boolean;
    record: DnsRecord;
    /** What to check when adding failed. */
    addHint: string;
  },
): Promise<void> {
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run(argv, { timeoutMs: o.timeoutMs, env: o.env });
  } catch (err) {
    throw new WileError(`could not run ${o.what}: ${(err as Error).message}`);
  }
  if (r.code === 0 && !r.timedOut) return;
  const output = lastLines(r);
  throw new WileError(`${o.what} failed (${describeExit(r, o.timeoutMs)})${output ? `: ${output}` : ""}`, {
    hint: o.add
      ? o.addHint
      : `Remove the TXT value ${o.record.value} at ${o.record.fqdn} by hand if it is still there.`,
  });
}
