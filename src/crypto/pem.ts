/**
 * PEM (RFC 7468) text: base64 DER between "-----BEGIN label-----" and "-----END label-----" lines.
 * Text outside blocks (OpenSSL's "subject=" or "Bag Attributes" lines) is ignored; a block that is
 * not closed, or whose body is not base64, is an error rather than silently skipped.
 */

/** A broken PEM block: not closed, an END without its BEGIN, a body that is not base64. */
export class PemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PemError";
  }
}

/** One PEM block; `headers` holds RFC 1421 headers such as "Proc-Type: 4,ENCRYPTED". */
export interface PemBlock {
  label: string;
  headers: Record<string, string>;
  der: Buffer;
}

/** PEM text for DER bytes: 64-character lines and a trailing newline. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.map((l) => `${l}\n`).join("")}-----END ${label}-----\n`;
}

/** Every PEM block in `text`, in order, with its label and headers. Throws PemError on a broken block. */
export function parsePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let open: { label: string; lines: string[] } | null = null;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    const begin = /^-----BEGIN ([^-]*)-----$/.exec(line);
    const end = /^-----END ([^-]*)-----$/.exec(line);
    if (begin) {
      if (open) throw new PemError(`PEM block "${open.label}" is not closed before the next BEGIN line`);
      open = { label: begin[1] ?? "", lines: [] };
    } else if (end) {
      if (!open || open.label !== end[1])
        throw new PemError(`PEM END line "${end[1]}" has no matching BEGIN`);
      blocks.push(decodeBody(open.label, open.lines));
      open = null;
    } else if (open) {
      open.lines.push(line);
    }
  }
  if (open) throw new PemError(`PEM block "${open.label}" has no END line`);
  return blocks;
}

function decodeBody(label: string, lines: string[]): PemBlock {
  const headers: Record<string, string> = {};
  let body = lines;
  if (lines.some((l) => l.includes(":"))) {
    // RFC 1421 headers, then an empty line, then the base64 body.
    const blank = lines.indexOf("");
    const headerLines = blank === -1 ? lines : lines.slice(0, blank);
    for (const h of headerLines) {
      const i = h.indexOf(":");
      if (i > 0) headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    body = blank === -1 ? [] : lines.slice(blank + 1);
  }
  const b64 = body.join("").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new PemError(`PEM block "${label}" does not contain valid base64`);
  }
  return { label, headers, der: Buffer.from(b64, "base64") };
}

/** The DER of every PEM block in `text`, or only of those labelled `label`. */
export function fromPem(text: string, label?: string): Buffer[] {
  return parsePemBlocks(text)
    .filter((b) => label === undefined || b.label === label)
    .map((b) => b.der);
}

/** Each CERTIFICATE block of a chain as its own normalised PEM string, in order. */
export function splitPemChain(text: string): string[] {
  return fromPem(text, "CERTIFICATE").map((der) => toPem("CERTIFICATE", der));
}
