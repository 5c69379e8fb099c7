/**
 * PowerShell text for remote Windows hosts, sent on the stdin of `powershell -Command -` over ssh,
 * and the parsing of what comes back.
 *
 * Every value wile inserts is a single-quoted PowerShell string (no variable expansion, no
 * subexpressions, no backtick escapes); the only character special inside one is the single quote
 * itself, in its ASCII form and its three typographic forms (U+2018, U+2019, U+201A, U+201B),
 * which PowerShell all accepts as quotes: each is doubled. Line breaks and NUL are refused, since
 * `-Command -` reads its input line by line.
 */

/** A value as a single-quoted PowerShell string literal. Throws on CR, LF or NUL. */
export function psQuote(value: string): string {
  if (/[\r\n\0]/.test(value)) {
    throw new Error(`a line break or NUL cannot be passed to PowerShell: ${JSON.stringify(value)}`);
  }
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

/** What comes back from a script that ends with a WILE-RESULT or WILE-ERROR line. */
export type ScriptOutcome =
  | { kind: "result"; value: Record<string, unknown> }
  | { kind: "error"; message: string }
  | { kind: "none"; output: string };

const RESULT = "WILE-RESULT ";
const ERROR = "WILE-ERROR ";

/**
 * The last WILE-RESULT line (JSON object) or WILE-ERROR line of stdout; anything else is ignored
 * (warnings, banners). A WILE-RESULT whose JSON is not an object counts as no result.
 */
export function parseScriptOutput(stdout: string, stderr = ""): ScriptOutcome {
  const lines = stdout.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? "").replace(/^\uFEFF/, "").trim();
    if (line.startsWith(ERROR) || line === ERROR.trim()) {
      return { kind: "error", message: line.slice(ERROR.length).trim() || "(no message)" };
    }
    if (line.startsWith(RESULT)) {
      try {
        const value = JSON.parse(line.slice(RESULT.length)) as unknown;
        if (value && typeof value === "object" && !Array.isArray(value)) {
          return { kind: "result", value: value as Record<string, unknown> };
        }
      } catch {
        // fall through: not a result
      }
      break;
    }
  }
  const text = [stdout, decodeClixml(stderr)]
    .join("\n")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return { kind: "none", output: text.slice(-5).join(" | ") };
}

/**
 * PowerShell writes errors as CLIXML on stderr when its output is redirected
 * (`#< CLIXML <Objs ...><S S="Error">text_x000D__x000A_</S>...`): the text of the error strings.
 * Other text is returned as it is.
 */
export function decodeClixml(stderr: string): string {
  if (!stderr.includes("#< CLIXML")) return stderr;
  const parts = [...stderr.matchAll(/<S S="Error">([\s\S]*?)<\/S>/g)].map((m) => m[1] ?? "");
  return parts
    .join("")
    .replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}
