import { createInterface } from "node:readline";
import { UsageError, WileError } from "../util/errors";
import type { Output } from "./output";

/** Where a confirmation is read from: the process's stdin, or a double in tests. */
export interface ConfirmInput {
  isTTY: boolean;
  /** One line typed after `prompt` (shown on stderr), or null at end of input. */
  readLine(prompt: string): Promise<string | null>;
}

export function processConfirmInput(): ConfirmInput {
  return {
    isTTY: process.stdin.isTTY === true,
    readLine: (prompt) =>
      new Promise((resolve) => {
        const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
        let answered = false;
        rl.on("close", () => {
          if (!answered) resolve(null);
        });
        rl.question(prompt, (answer) => {
          answered = true;
          rl.close();
          resolve(answer);
        });
      }),
  };
}

/**
 * For destructive commands (revoke, remove, account deactivate): says exactly what will happen
 * (the `plan` lines, on stderr), then goes on only with --yes, or when the operator types "yes" on
 * a terminal. Without a terminal and without --yes: UsageError (exit 2), nothing done. A different
 * answer: WileError (exit 1), nothing done.
 */
export async function confirmAction(opts: {
  yes: boolean;
  /** Short imperative, e.g. "revoke example.com's certificate". */
  action: string;
  plan: string[];
  out: Output;
  input?: ConfirmInput;
}): Promise<void> {
  const { out } = opts;
  for (const line of opts.plan) out.logger.info(line);
  if (opts.yes) return;
  const input = opts.input ?? processConfirmInput();
  if (!input.isTTY) {
    throw new UsageError(
      `not confirmed: wile asks before it will ${opts.action}, and stdin is not a terminal`,
      {
        hint: "Nothing was changed. Add --yes to confirm (for scripts), or run the command in a terminal.",
      },
    );
  }
  const answer = await input.readLine(`Type "yes" to ${opts.action}: `);
  if (answer?.trim().toLowerCase() !== "yes") {
    throw new WileError("not confirmed; nothing was changed", {
      hint: 'Type "yes" at the prompt to go ahead, or pass --yes.',
    });
  }
}
