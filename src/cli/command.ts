import type { OptionSpec, ParsedOptions } from "./options";
import type { Output } from "./output";

export interface CommandContext {
  /** The arguments after the command name, as typed (for order-sensitive options). */
  argv: string[];
  opts: ParsedOptions;
  out: Output;
  env: Record<string, string | undefined>;
  home: string;
  /** How long a deploy's verify waits for a service to serve the new certificate (WILE_VERIFY_WAIT_MS). */
  verifyWaitMs: number;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec[];
  /** Longer explanation shown by --help, before the options. */
  description?: string;
  examples: string[];
  /** Help on one topic of the command (`wile deploy dovecot --help`); undefined for an unknown one. */
  topicHelp?(topic: string): string | undefined;
  /** Keeps a record in <home>/logs/wile.log (commands that change state or talk to a CA). */
  logs?: boolean;
  run(ctx: CommandContext): Promise<number>;
}
