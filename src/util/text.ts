/** Helpers for showing untrusted text (server answers, file contents) in messages. */

/**
 * A short, single-line, printable rendering: runs of control, non-ASCII or white-space characters
 * become one space, and the result is cut at `max` characters with "..." after it.
 */
export function printable(text: string, max: number): string {
  const flat = text.replace(/[^\x21-\x7e]+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}

/** A plain JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
