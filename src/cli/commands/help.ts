import { UsageError } from "../../util/errors";
import type { Command } from "../command";
import { commandHelp, generalHelp } from "../help";

/** `wile help [COMMAND]`; built with the command list so it can describe every command. */
export function helpCommand(all: () => Command[]): Command {
  return {
    name: "help",
    summary: "show help for wile or one command",
    usage: "wile help [COMMAND]",
    options: [],
    examples: ["wile help", "wile help issue"],
    async run({ opts, out }) {
      const topic = opts._[0];
      if (topic === undefined) {
        out.print(generalHelp(all()));
        return 0;
      }
      const cmd = all().find((c) => c.name === topic);
      if (!cmd) throw new UsageError(`no such command "${topic}"`, { hint: "Run 'wile help' for the list." });
      out.print(commandHelp(cmd));
      return 0;
    },
  };
}
