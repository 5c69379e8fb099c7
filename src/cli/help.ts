import { VERSION } from "../version";
import type { Command } from "./command";
import { GLOBAL_OPTIONS, type OptionSpec } from "./options";

export function optionLines(specs: OptionSpec[]): string[] {
  const left = specs.map((s) => {
    const names = `${s.alias ? `-${s.alias}, ` : "    "}--${s.defaultTrue ? `[no-]${s.name}` : s.name}`;
    return s.arg ? `${names} ${s.arg}` : names;
  });
  const width = Math.min(34, Math.max(...left.map((l) => l.length)));
  const indent = " ".repeat(width + 4);
  return specs.map((s, i) => {
    const l = left[i] as string;
    const text = wrap(s.help, 100 - indent.length).join(`\n${indent}`);
    return l.length > width ? `  ${l}\n${indent}${text}` : `  ${l.padEnd(width)}  ${text}`;
  });
}

/** Greedy word wrap. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export function commandHelp(cmd: Command): string {
  const parts = [`Usage: ${cmd.usage}`, "", `${cmd.summary[0]?.toUpperCase()}${cmd.summary.slice(1)}.`];
  if (cmd.description) parts.push("", cmd.description);
  if (cmd.options.length > 0) parts.push("", "Options:", ...optionLines(cmd.options));
  parts.push("", "Global options:", ...optionLines(GLOBAL_OPTIONS));
  parts.push("", "Examples:", ...cmd.examples.map((e) => `  ${e}`));
  return parts.join("\n");
}

export function generalHelp(commands: Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `wile ${VERSION}: TLS certificates from Let's Encrypt or any ACME CA, for people who run their own servers.`,
    "",
    "Usage: wile <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Global options:",
    ...optionLines(GLOBAL_OPTIONS),
    "",
    "Examples:",
    "  wile issue -d example.com -d www.example.com -w /var/www/html --email me@example.com",
    "  wile list",
    "",
    "State lives in ~/.wile (or --home, or $WILE_HOME). 'wile <command> --help' tells more.",
  ].join("\n");
}
