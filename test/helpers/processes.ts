/** Looking at local processes, for tests that check nothing was left running. */
import { readdirSync, readFileSync } from "node:fs";

/** Running (a zombie left for a non-reaping init counts as gone). */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * Local processes whose argv[0] is `program` and whose command line holds `text` ("pid: argv"),
 * once those that got a signal have had up to 2 s to end: for "nothing was left running".
 */
export async function leftRunning(program: string, text: string): Promise<string[]> {
  const scan = () => {
    const found: string[] = [];
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      } catch {
        continue; // ended meanwhile
      }
      if (argv[0] === program && argv.some((a) => a.includes(text))) found.push(`${pid}: ${argv.join(" ")}`);
    }
    return found;
  };
  for (let i = 0; i < 100 && scan().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return scan();
}
