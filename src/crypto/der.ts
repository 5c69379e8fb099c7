/**
 * A small DER (X.690) writer and a strict reader: just what CSRs, certificates and PKCS#12 need.
 *
 * Writer functions return a complete TLV as a Buffer. The reader accepts only DER: definite,
 * minimally encoded lengths, no end-of-contents octets, no truncation. Reader nodes are views into
 * the input buffer (no copies), so do not mutate the input while using them.
 */

/** Malformed or non-DER input, or a value the writer cannot encode. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Any tag byte (low-tag-number form) with already-encoded content. */
export function tlv(tagByte: number, content: Uint8Array): Buffer {
  if (!Number.isInteger(tagByte) || tagByte < 0 || tagByte > 0xff || (tagByte & 0x1f) === 0x1f) {
    throw new DerError(`tag byte ${tagByte} is not a single-byte tag`);
  }
  return Buffer.concat([Buffer.from([tagByte]), encodeLength(content.length), content]);
}

/** SEQUENCE of already-encoded items, in the given order. */
export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

/**
 * SET of already-encoded items. DER orders SET OF elements by their encodings; this sorts them,
 * which is also correct for the one-element sets used in names and attributes.
 */
export function set(...items: Uint8Array[]): Buffer {
  const sorted = items.map((i) => Buffer.from(i)).sort(Buffer.compare);
  return tlv(0x31, Buffer.concat(sorted));
}

/** Minimal two's-complement big-endian bytes of a bigint. */
function twosComplement(value: bigint): Buffer {
  const bytes: number[] = [];
  let v = value;
  for (;;) {
    const byte = Number(v & 0xffn);
    bytes.unshift(byte);
    v >>= 8n;
    // Done once the remaining value is pure sign extension of the byte just written.
    if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
  }
  return Buffer.from(bytes);
}

/**
 * INTEGER. A number or bigint is encoded as a signed value (negative numbers in two's complement,
 * as X.690 requires). A Uint8Array is an unsigned big-endian magnitude (for example a serial
 * number or an RSA modulus): redundant leading zeros are stripped and a 0x00 is added when the top
 * bit is set, so the value stays positive.
 */
export function integer(value: bigint | number | Uint8Array): Buffer {
  if (value instanceof Uint8Array) {
    let start = 0;
    while (start < value.length - 1 && value[start] === 0) start++;
    const magnitude = Buffer.from(value.subarray(start));
    if (magnitude.length === 0) return tlv(0x02, Buffer.from([0]));
    const needsSign = (magnitude[0] ?? 0) & 0x80;
    return tlv(0x02, needsSign ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude);
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new DerError(`INTEGER needs a safe integer or a bigint, got ${value}`);
  }
  return tlv(0x02, twosComplement(BigInt(value)));
}

/** OBJECT IDENTIFIER from dotted text such as "1.2.840.113549.1.1.11". */
export function oid(dotted: string): Buffer {
  if (!/^\d+(\.\d+)+$/.test(dotted)) throw new DerError(`"${dotted}" is not a dotted OID`);
  const arcs = dotted.split(".").map((a) => BigInt(a));
  const [first = 0n, second = 0n, ...rest] = arcs;
  if (first > 2n || (first < 2n && second > 39n)) {
    throw new DerError(`"${dotted}" is not a valid OID (first arcs out of range)`);
  }
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const groups: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** OCTET STRING. */
export function octetString(bytes: Uint8Array): Buffer {
  return tlv(0x04, bytes);
}

/** BIT STRING with the given number of unused bits (0..7) in the last byte. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (
    !Number.isInteger(unusedBits) ||
    unusedBits < 0 ||
    unusedBits > 7 ||
    (bytes.length === 0 && unusedBits)
  ) {
    throw new DerError(`BIT STRING cannot have ${unusedBits} unused bits here`);
  }
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/** UTF8String. */
export function utf8String(s: string): Buffer {
  return tlv(0x0c, Buffer.from(s, "utf8"));
}

/** PrintableString; throws on characters outside its alphabet. */
export function printableString(s: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s)) throw new DerError(`"${s}" is not a PrintableString`);
  return tlv(0x13, Buffer.from(s, "latin1"));
}

/** IA5String (ASCII); throws on non-ASCII characters. */
export function ia5String(s: string): Buffer {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: IA5 is exactly the 7-bit range
  if (!/^[\x00-\x7f]*$/.test(s)) throw new DerError(`"${s}" is not ASCII, so not an IA5String`);
  return tlv(0x16, Buffer.from(s, "latin1"));
}

/** UTCTime (YYMMDDHHMMSSZ) of an instant in 1950-2049, as RFC 5280 4.1.2.5.1 wants for such dates. */
export function utcTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (!(year >= 1950 && year <= 2049)) throw new DerError(`UTCTime cannot hold the year ${year}`);
  const text = date.toISOString().replace(/[-:T]/g, "").slice(2, 14);
  return tlv(0x17, Buffer.from(`${text}Z`, "latin1"));
}

/** NULL. */
export function nullValue(): Buffer {
  return Buffer.from([0x05, 0x00]);
}

/** BOOLEAN (DER: TRUE is 0xFF). */
export function boolean(b: boolean): Buffer {
  return Buffer.from([0x01, 0x01, b ? 0xff : 0x00]);
}

/**
 * Context-specific tag [tagNumber] around already-encoded content. EXPLICIT tagging: pass the inner
 * TLV and constructed=true. IMPLICIT tagging: pass the inner content bytes (not the TLV) and the
 * inner type's constructed flag (true for SEQUENCE/SET, false for strings and the like).
 */
export function contextSpecific(tagNumber: number, content: Uint8Array, constructed: boolean): Buffer {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) {
    throw new DerError(`context tag [${tagNumber}] is out of range 0..30`);
  }
  return tlv(0x80 | (constructed ? 0x20 : 0) | tagNumber, content);
}

// ---------------------------------------------------------------------------------------------
// Reader

export interface DerNode {
  /** First identifier octet as found in the input. */
  tagByte: number;
  tagClass: "universal" | "application" | "context" | "private";
  constructed: boolean;
  tagNumber: number;
  /** Bytes of identifier and length octets. */
  headerLength: number;
  /** The value octets (a view into the input). */
  content: Buffer;
  /** The whole TLV (a view into the input). */
  raw: Buffer;
}

const CLASSES = ["universal", "application", "context", "private"] as const;

/** Reads one TLV at `offset`; bytes after it are left alone. */
export function readDer(buf: Uint8Array, offset = 0): DerNode {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new DerError(`bad offset ${offset}`);
  let pos = offset;
  const need = (n: number, what: string) => {
    if (pos + n > b.length) throw new DerError(`truncated DER: ${what} runs past the end at offset ${pos}`);
  };
  need(1, "tag");
  const tagByte = b[pos++] ?? 0;
  if (tagByte === 0) throw new DerError(`unexpected end-of-contents octets at offset ${offset}`);
  let tagNumber = tagByte & 0x1f;
  if (tagNumber === 0x1f) {
    // High-tag-number form: base-128, minimal, and only for numbers above 30.
    tagNumber = 0;
    for (let first = true; ; first = false) {
      need(1, "tag number");
      const byte = b[pos++] ?? 0;
      if (first && byte === 0x80) throw new DerError("non-minimal tag number");
      tagNumber = tagNumber * 128 + (byte & 0x7f);
      if (tagNumber > 0xffffff) throw new DerError("tag number too large");
      if (!(byte & 0x80)) break;
    }
    if (tagNumber < 31) throw new DerError("non-minimal tag number");
  }
  need(1, "length");
  const lengthByte = b[pos++] ?? 0;
  let length = lengthByte;
  if (lengthByte === 0x80) throw new DerError(`indefinite length at offset ${offset} is not DER`);
  if (lengthByte > 0x80) {
    const count = lengthByte & 0x7f;
    if (count > 4) throw new DerError(`length of ${count} bytes at offset ${offset} is too large`);
    need(count, "length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (b[pos++] ?? 0);
    if (length < 0x80 || b[pos - count] === 0) {
      throw new DerError(`non-minimal length encoding at offset ${offset} is not DER`);
    }
  }
  const headerLength = pos - offset;
  need(length, `content of ${length} bytes`);
  return {
    tagByte,
    tagClass: CLASSES[tagByte >> 6] ?? "universal",
    constructed: (tagByte & 0x20) !== 0,
    tagNumber,
    headerLength,
    content: b.subarray(pos, pos + length),
    raw: b.subarray(offset, pos + length),
  };
}

/** Reads consecutive TLVs that must cover `buf` exactly. */
export function readAll(buf: Uint8Array): DerNode[] {
  const nodes: DerNode[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const node = readDer(buf, pos);
    nodes.push(node);
    pos += node.raw.length;
  }
  return nodes;
}

/** The elements of a constructed node (SEQUENCE, SET, EXPLICIT tag, ...). */
export function children(node: DerNode): DerNode[] {
  if (!node.constructed) throw new DerError(`tag 0x${node.tagByte.toString(16)} is not constructed`);
  return readAll(node.content);
}

/** Dotted text of OBJECT IDENTIFIER content octets. */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new DerError("empty OBJECT IDENTIFIER");
  const arcs: bigint[] = [];
  let value = 0n;
  let start = true;
  for (const byte of content) {
    if (start && byte === 0x80) throw new DerError("non-minimal OBJECT IDENTIFIER arc");
    value = (value << 7n) | BigInt(byte & 0x7f);
    start = !(byte & 0x80);
    if (start) {
      arcs.push(value);
      value = 0n;
    }
  }
  if (!start) throw new DerError("truncated OBJECT IDENTIFIER");
  const [head = 0n, ...rest] = arcs;
  const first = head < 80n ? head / 40n : 2n;
  return [first, head - first * 40n, ...rest].join(".");
}

/** Signed value of INTEGER content octets. */
export function decodeInteger(content: Uint8Array): bigint {
  if (content.length === 0) throw new DerError("empty INTEGER");
  let value = 0n;
  for (const byte of content) value = (value << 8n) | BigInt(byte);
  if ((content[0] ?? 0) & 0x80) value -= 1n << BigInt(content.length * 8);
  return value;
}

/** Text of a UTF8String, PrintableString, IA5String, VisibleString, T61String (as Latin-1) or BMPString. */
export function decodeString(node: DerNode): string {
  if (node.tagClass !== "universal" || node.constructed) {
    throw new DerError(`tag 0x${node.tagByte.toString(16)} is not a string`);
  }
  switch (node.tagNumber) {
    case 12:
      return node.content.toString("utf8");
    case 19:
    case 22:
    case 26:
    case 20:
      return node.content.toString("latin1");
    case 30: {
      if (node.content.length % 2) throw new DerError("BMPString of odd length");
      return Buffer.from(node.content).swap16().toString("utf16le");
    }
    default:
      throw new DerError(`universal tag ${node.tagNumber} is not a supported string type`);
  }
}

/** Instant of a UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSS[.fff]Z). */
export function decodeTime(node: DerNode): Date {
  const text = node.content.toString("latin1");
  const isUtc = node.tagClass === "universal" && node.tagNumber === 23;
  const isGeneralized = node.tagClass === "universal" && node.tagNumber === 24;
  if (!isUtc && !isGeneralized) throw new DerError(`tag 0x${node.tagByte.toString(16)} is not a time`);
  const m = isUtc
    ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)()Z$/.exec(text)
    : /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d*[1-9]))?Z$/.exec(text);
  if (!m) throw new DerError(`"${text}" is not a DER time`);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fullYear = isUtc ? year + (year < 50 ? 2000 : 1900) : year;
  const ms = Math.floor(Number(`0.${m[7] || "0"}`) * 1000);
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms));
  date.setUTCFullYear(fullYear);
  if (
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new DerError(`"${text}" is not a valid date`);
  }
  return date;
}
