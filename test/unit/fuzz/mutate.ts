/**
 * Generators that damage a valid input a little, so that a parser gets past its first check and its
 * deep paths are reached: bytes of DER (bits flipped, bytes cut, inserted, repeated, length fields
 * changed), text (characters and lines cut, repeated, swapped, PEM and JSON punctuation put in),
 * JSON documents (fields changed to other types, deleted, nested, added).
 */
import fc from "fast-check";
import { readAll } from "../../../src/crypto/der";

interface Tlv {
  /** Offset of the tag byte in the outermost input. */
  header: number;
  /** Offset and length of the content in the outermost input. */
  at: number;
  length: number;
  constructed: boolean;
}

/** Every TLV in `der`, including DER wrapped in OCTET and BIT STRINGs (certificate extensions). */
function layout(der: Buffer): Tlv[] {
  const out: Tlv[] = [];
  const walk = (buf: Buffer, base: number) => {
    let nodes: ReturnType<typeof readAll>;
    try {
      nodes = readAll(buf);
    } catch {
      return;
    }
    let pos = 0;
    for (const node of nodes) {
      const at = base + pos + node.headerLength;
      out.push({ header: base + pos, at, length: node.content.length, constructed: node.constructed });
      if (node.constructed || node.tagByte === 0x04) walk(node.content, at);
      else if (node.tagByte === 0x03 && node.content[0] === 0) walk(node.content.subarray(1), at + 1);
      pos += node.raw.length;
    }
  };
  walk(der, 0);
  return out;
}

/** Offsets of every TLV header in `der`. */
export function headerOffsets(der: Buffer): number[] {
  return layout(der).map((t) => t.header);
}

/**
 * `valid` with the content of one to three primitive values changed and every length kept: the
 * structure holds, so a strict outer parser (OpenSSL) lets the bytes through to wile's own reader.
 */
export function mutatedContent(valid: Buffer): fc.Arbitrary<Buffer> {
  const places = layout(valid).filter((t) => !t.constructed && t.length > 0);
  const change = fc.record({
    place: fc.nat(places.length - 1),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
  });
  return fc.array(change, { minLength: 1, maxLength: 3 }).map((changes) => {
    const out = Buffer.from(valid);
    for (const c of changes) {
      const place = places[c.place] as Tlv;
      const start = place.at + (c.at % place.length);
      Buffer.from(c.bytes).copy(out, start, 0, Math.min(c.bytes.length, place.at + place.length - start));
    }
    return out;
  });
}

type ByteOp =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; byte: number }
  | { op: "truncate"; at: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; count: number }
  | { op: "repeat"; at: number; count: number }
  | { op: "length"; header: number; how: number; extra: Uint8Array };

const byteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }),
  }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant("repeat" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 32 }) }),
  fc.record({
    op: fc.constant("length" as const),
    header: fc.nat(),
    how: fc.nat(7),
    extra: fc.uint8Array({ minLength: 1, maxLength: 5 }),
  }),
);

function applyByteOp(buf: Buffer, m: ByteOp, headers: number[]): Buffer {
  if (buf.length === 0) return buf;
  if (m.op === "length") {
    if (headers.length === 0) return buf;
    const at = ((headers[m.header % headers.length] as number) + 1) % buf.length;
    const old = buf[at] as number;
    const out = Buffer.from(buf);
    switch (m.how) {
      case 0: // one more or one less
        out[at] = (old + 1) & 0xff;
        return out;
      case 1:
        out[at] = (old + 255) & 0xff;
        return out;
      case 2: // indefinite length
        out[at] = 0x80;
        return out;
      case 3: // long form of 1..5 bytes (non-minimal, huge, or too long)
        return Buffer.concat([
          buf.subarray(0, at),
          Buffer.from([0x80 | m.extra.length]),
          m.extra,
          buf.subarray(at + 1),
        ]);
      case 4: // the same length, non-minimally encoded
        return Buffer.concat([buf.subarray(0, at), Buffer.from([0x81, old & 0x7f]), buf.subarray(at + 1)]);
      case 5: // zero length
        out[at] = 0;
        return out;
      case 6: // any byte
        out[at] = m.extra[0] as number;
        return out;
      default: // 0xff: a long form claiming 127 length bytes
        out[at] = 0xff;
        return out;
    }
  }
  const at = m.at % buf.length;
  switch (m.op) {
    case "flip": {
      const out = Buffer.from(buf);
      out[at] = (out[at] as number) ^ (1 << m.bit);
      return out;
    }
    case "set": {
      const out = Buffer.from(buf);
      out[at] = m.byte;
      return out;
    }
    case "truncate":
      return buf.subarray(0, at);
    case "insert":
      return Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
    case "delete":
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.count)]);
    case "repeat":
      return Buffer.concat([buf.subarray(0, at + m.count), buf.subarray(at)]);
  }
}

/** `valid` with one to four byte-level mutations; `headers` from headerOffsets(valid). */
export function mutatedBytes(valid: Buffer, headers = headerOffsets(valid)): fc.Arbitrary<Buffer> {
  return fc
    .array(byteOp, { minLength: 1, maxLength: 4 })
    .map((ops) => ops.reduce<Buffer>((buf, m) => applyByteOp(buf, m, headers), Buffer.from(valid)));
}

/** Pieces that matter to PEM, JSON and HTTP header parsers, put into text by mutatedText. */
const PIECES = [
  "-----",
  "-----BEGIN ",
  "-----END ",
  "CERTIFICATE",
  "PRIVATE KEY",
  "Proc-Type: 4,ENCRYPTED",
  ":",
  "=",
  "==",
  "\n",
  "\r\n",
  "\r",
  " ",
  "\t",
  "\u0000",
  "\u00e9",
  "\ud83d\ude00",
  "\ud800",
  "{",
  "}",
  "[",
  "]",
  '"',
  ",",
  ";",
  "<",
  ">",
  "\\",
  "null",
  "-1",
  "1e400",
  "__proto__",
];

type TextOp =
  | { op: "delete"; at: number; count: number }
  | { op: "insert"; at: number; text: string }
  | { op: "replace"; at: number; text: string }
  | { op: "truncate"; at: number }
  | { op: "repeatLine"; line: number }
  | { op: "dropLine"; line: number }
  | { op: "swapLines"; a: number; b: number };

const insertText = fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 4, unit: "binary" }));

const textOp: fc.Arbitrary<TextOp> = fc.oneof(
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), text: insertText }),
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), text: insertText }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("repeatLine" as const), line: fc.nat() }),
  fc.record({ op: fc.constant("dropLine" as const), line: fc.nat() }),
  fc.record({ op: fc.constant("swapLines" as const), a: fc.nat(), b: fc.nat() }),
);

function applyTextOp(text: string, m: TextOp): string {
  const lines = text.split("\n");
  const n = lines.length;
  switch (m.op) {
    case "repeatLine":
      lines.splice(m.line % n, 0, lines[m.line % n] as string);
      return lines.join("\n");
    case "dropLine":
      lines.splice(m.line % n, 1);
      return lines.join("\n");
    case "swapLines": {
      const [a, b] = [m.a % n, m.b % n];
      [lines[a], lines[b]] = [lines[b] as string, lines[a] as string];
      return lines.join("\n");
    }
  }
  const at = text.length === 0 ? 0 : m.at % (text.length + 1);
  switch (m.op) {
    case "delete":
      return text.slice(0, at) + text.slice(at + m.count);
    case "insert":
      return text.slice(0, at) + m.text + text.slice(at);
    case "replace":
      return text.slice(0, at) + m.text + text.slice(at + m.text.length);
    case "truncate":
      return text.slice(0, at);
  }
}

/** `valid` with one to four text mutations. */
export function mutatedText(valid: string): fc.Arbitrary<string> {
  return fc.array(textOp, { minLength: 1, maxLength: 4 }).map((ops) => ops.reduce(applyTextOp, valid));
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path (list of keys and indexes) to a value inside `v`, the root ([]) included. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) out.push(...paths(x, [...prefix, i]));
  } else if (v !== null && typeof v === "object")
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

/** Keys that a plain object already has, and other keys a reader may look up. */
const KEYS = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "version",
  "type",
  "value",
  "kind",
  "",
];

/** Wrong-typed and edge values a field may be changed to (fast-check's own: copy before use). */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...KEYS),
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -0, "", " ", "1", "true", "null", [], {}, [null], {
    version: 1,
  }),
  fc.string({ maxLength: 12, unit: "binary" }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);

type JsonOp =
  | { op: "set"; path: number; value: unknown }
  | { op: "delete"; path: number }
  | { op: "nest"; path: number; inArray: boolean }
  | { op: "add"; path: number; key: string; value: unknown };

const jsonOp: fc.Arbitrary<JsonOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("set" as const), path: fc.nat(), value: oddValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), path: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("nest" as const), path: fc.nat(), inArray: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("add" as const),
      path: fc.nat(),
      key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 })),
      value: oddValue,
    }),
  },
);

/** Own-property assignment, so that a key "__proto__" becomes a field as JSON.parse makes it. */
function put(target: Record<string, unknown> | unknown[], key: string | number, value: unknown) {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function applyJsonOp(doc: unknown, m: JsonOp): unknown {
  const all = paths(doc);
  const path = all[m.path % all.length] as (string | number)[];
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1];
  let parent: unknown = doc;
  for (const k of parentPath) parent = (parent as Record<string | number, unknown>)[k];
  const current = key === undefined ? doc : (parent as Record<string | number, unknown>)[key];
  const replace = (value: unknown): unknown => {
    if (key === undefined) return value;
    put(parent as Record<string, unknown>, key, value);
    return doc;
  };
  switch (m.op) {
    case "set":
      return replace(structuredClone(m.value));
    case "delete":
      if (key === undefined) return undefined;
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as Record<string, unknown>)[key];
      return doc;
    case "nest":
      return replace(m.inArray ? [current] : { value: current });
    case "add":
      if (current !== null && typeof current === "object" && !Array.isArray(current)) {
        put(current as Record<string, unknown>, m.key, structuredClone(m.value));
        return doc;
      }
      if (Array.isArray(current)) current.push(structuredClone(m.value));
      return doc;
  }
}

/** A deep copy of `valid` with one to three field-level changes. */
export function mutatedJson(valid: Json): fc.Arbitrary<unknown> {
  return fc
    .array(jsonOp, { minLength: 1, maxLength: 3 })
    .map((ops) => ops.reduce<unknown>((doc, m) => applyJsonOp(doc, m), structuredClone(valid)));
}

/**
 * Text of a JSON file as a damaged store file may hold it: the valid document with changed fields,
 * the valid text with changed characters (cut short, stray commas), any JSON value, or any text.
 */
export function jsonFileText(valid: Json): fc.Arbitrary<string> {
  const text = JSON.stringify(valid, null, 2);
  return fc.oneof(
    { weight: 6, arbitrary: mutatedJson(valid).map((v) => JSON.stringify(v) ?? "") },
    { weight: 2, arbitrary: mutatedText(text) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: "binary" }) },
  );
}

export type { Json };
