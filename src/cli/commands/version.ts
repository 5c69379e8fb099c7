import { VERSION } from "../../version";
import type { Command } from "../command";

export const versionCommand: Command = {
  name: "version",
  summary: "print wile's version",
  usage: "wile version [--json]",
  options: [],
  examples: ["wile version", "wile --version"],
  async run({ out }) {
    if (out.jsonMode) out.json({ version: VERSION, node: process.versions.node });
    else out.print(`wile ${VERSION}`);
    return 0;
  },
};
