/**
 * DNS messages on the wire (RFC 1035 section 4), as much as wile needs: queries and dynamic
 * updates out, answers in. Names are written uncompressed and read with compression. Every read is
 * bounds-checked: the bytes come from the network, and anything malformed is a DnsError.
 *
 * Names are presentation strings without the trailing dot ("example.com", root is ""); label bytes
 * other than letters, digits, "-", "_" and "*" read as \DDD.
 */
import { WileError } from "../util/errors";

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  TSIG: 250,
  ANY: 255,
} as const;

export const CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;

export const OPCODE = { QUERY: 0, NOTIFY: 4, UPDATE: 5 } as const;

/** RCODEs (RFC 1035, 2136) and TSIG error codes (RFC 8945), by number. */
export const RCODE_NAMES: Record<number, string> = {
  0: "NOERROR",
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
  6: "YXDOMAIN",
  7: "YXRRSET",
  8: "NXRRSET",
  9: "NOTAUTH",
  10: "NOTZONE",
  16: "BADSIG",
  17: "BADKEY",
  18: "BADTIME",
  22: "BADTRUNC",
};

export function rcodeName(code: number): string {
  return RCODE_NAMES[code] ?? `RCODE${code}`;
}

/** A DNS failure: malformed packet, timeout, error answer, TSIG failure. `rcode` when a server said so. */
export class DnsError extends WileError {
  readonly rcode: string | undefined;
  constructor(message: string, options: { hint?: string; cause?: unknown; rcode?: string } = {}) {
    super(message, options);
    this.rcode = options.rcode;
  }
}

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface Soa {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export interface Tsig {
  algorithm: string;
  /** Seconds since the epoch (48 bits on the wire). */
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
}

/** Parsed RDATA for the types wile reads; TXT strings are latin1 so that no byte is lost. */
export type RData =
  | { type: "A" | "AAAA"; address: string }
  | { type: "NS" | "CNAME"; name: string }
  | { type: "SOA"; soa: Soa }
  | { type: "TXT"; strings: string[] }
  | { type: "TSIG"; tsig: Tsig };

export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** Raw RDATA (for writing; for reading, compressed names inside stay as they came). */
  rdata: Buffer;
  /** Parsed RDATA when read and of a known type. */
  data?: RData;
  /** Byte offset of the record in the message it was read from (TSIG verification needs it). */
  offset?: number;
}

export interface Message {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
  questions: Question[];
  /** Answer section (for UPDATE: prerequisites). */
  answers: ResourceRecord[];
  /** Authority section (for UPDATE: the updates). */
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

export const MAX_NAME = 255;

// ---------------------------------------------------------------------------------------------
// Writing

/** A name in uncompressed wire form; `lower` gives the canonical (lower-case) form TSIG needs. */
export function encodeName(name: string, lower = false): Buffer {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  const parts: Buffer[] = [];
  if (trimmed !== "") {
    for (const label of trimmed.split(".")) {
      const bytes = Buffer.from(lower ? label.toLowerCase() : label, "latin1");
      if (bytes.length === 0 || bytes.length > 63) {
        throw new DnsError(`invalid DNS name "${name}": labels must have 1 to 63 characters`);
      }
      parts.push(Buffer.from([bytes.length]), bytes);
    }
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > MAX_NAME) throw new DnsError(`invalid DNS name "${name}": longer than 255 bytes`);
  return out;
}

/** TXT RDATA: the value cut into character-strings of at most 255 bytes. */
export function encodeTxt(value: string): Buffer {
  const bytes = Buffer.from(value, "latin1");
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}

/** `n` as a big-endian unsigned integer of `size` bytes. */
export function uint(n: number, size: 2 | 4 | 6): Buffer {
  const b = Buffer.alloc(size);
  b.writeUIntBE(n, 0, size);
  return b;
}

export function encodeRecord(rr: ResourceRecord): Buffer {
  if (rr.rdata.length > 0xffff) throw new DnsError("RDATA longer than 65535 bytes");
  return Buffer.concat([
    encodeName(rr.name),
    uint(rr.type, 2),
    uint(rr.class, 2),
    uint(rr.ttl, 4),
    uint(rr.rdata.length, 2),
    rr.rdata,
  ]);
}

export function encodeHeader(
  m: Pick<Message, "id" | "qr" | "opcode" | "aa" | "tc" | "rd" | "ra" | "rcode">,
  counts: number[],
): Buffer {
  const flags =
    (m.qr ? 0x8000 : 0) |
    ((m.opcode & 0xf) << 11) |
    (m.aa ? 0x400 : 0) |
    (m.tc ? 0x200 : 0) |
    (m.rd ? 0x100 : 0) |
    (m.ra ? 0x80 : 0) |
    (m.rcode & 0xf);
  return Buffer.concat([uint(m.id, 2), uint(flags, 2), ...counts.map((n) => uint(n, 2))]);
}

export function encodeMessage(m: Message): Buffer {
  const sections = [m.answers, m.authorities, m.additionals];
  return Buffer.concat([
    encodeHeader(m, [m.questions.length, ...sections.map((s) => s.length)]),
    ...m.questions.map((q) => Buffer.concat([encodeName(q.name), uint(q.type, 2), uint(q.class, 2)])),
    ...sections.flatMap((s) => s.map(encodeRecord)),
  ]);
}

/** A message with defaults: id 0, all flags off, empty sections. */
export function message(fields: Partial<Message>): Message {
  return {
    id: 0,
    qr: false,
    opcode: OPCODE.QUERY,
    aa: false,
    tc: false,
    rd: false,
    ra: false,
    rcode: 0,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    ...fields,
  };
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Bounds-checked reads from one message; `pos` moves forward. */
export class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) {
      throw new DnsError(
        `malformed DNS message: ${what} runs past the end (offset ${this.pos}, ${this.buf.length} bytes)`,
      );
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf.readUInt8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u48(what: string): number {
    this.need(6, what);
    const v = this.buf.readUIntBE(this.pos, 6);
    this.pos += 6;
    return v;
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /**
   * A possibly compressed name. Each pointer must point before the bytes read for this name so far
   * (before the name's start, then before the last pointer's target), so no loop is possible.
   */
  name(what: string): string {
    const labels: string[] = [];
    let pos = this.pos;
    let limit = this.pos;
    let end: number | undefined;
    let wireLength = 1;
    for (;;) {
      if (pos >= this.buf.length) throw new DnsError(`malformed DNS message: ${what} runs past the end`);
      const len = this.buf.readUInt8(pos);
      if (len === 0) {
        pos += 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (pos + 2 > this.buf.length) throw new DnsError(`malformed DNS message: ${what} runs past the end`);
        const target = this.buf.readUInt16BE(pos) & 0x3fff;
        if (target >= limit)
          throw new DnsError(
            `malformed DNS message: ${what} has a compression pointer that does not point backwards`,
          );
        end ??= pos + 2;
        pos = target;
        limit = target;
        continue;
      }
      if (kind !== 0) throw new DnsError(`malformed DNS message: ${what} uses a reserved label type`);
      if (pos + 1 + len > this.buf.length)
        throw new DnsError(`malformed DNS message: ${what} runs past the end`);
      wireLength += len + 1;
      if (wireLength > MAX_NAME)
        throw new DnsError(`malformed DNS message: ${what} is longer than 255 bytes`);
      labels.push(presentLabel(this.buf.subarray(pos + 1, pos + 1 + len)));
      pos += 1 + len;
    }
    this.pos = end ?? pos;
    return labels.join(".");
  }
}

function presentLabel(bytes: Buffer): string {
  let s = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9_*-]/.test(c) ? c : `\\${b.toString().padStart(3, "0")}`;
  }
  return s;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPE).map(([k, v]) => [v, k]));

export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `TYPE${type}`;
}

function readRData(r: Reader, type: number, length: number): RData | undefined {
  const end = r.pos + length;
  const what = `${typeName(type)} RDATA`;
  let data: RData | undefined;
  switch (type) {
    case TYPE.A:
      if (length !== 4) throw new DnsError(`malformed DNS message: A RDATA of ${length} bytes`);
      data = { type: "A", address: [...r.bytes(4, what)].join(".") };
      break;
    case TYPE.AAAA: {
      if (length !== 16) throw new DnsError(`malformed DNS message: AAAA RDATA of ${length} bytes`);
      const b = r.bytes(16, what);
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
      data = { type: "AAAA", address: groups.join(":") };
      break;
    }
    case TYPE.NS:
    case TYPE.CNAME:
      data = { type: type === TYPE.NS ? "NS" : "CNAME", name: r.name(what) };
      break;
    case TYPE.SOA:
      data = {
        type: "SOA",
        soa: {
          mname: r.name(what),
          rname: r.name(what),
          serial: r.u32(what),
          refresh: r.u32(what),
          retry: r.u32(what),
          expire: r.u32(what),
          minimum: r.u32(what),
        },
      };
      break;
    case TYPE.TXT: {
      const strings: string[] = [];
      while (r.pos < end) {
        const n = r.u8(what);
        if (r.pos + n > end) throw new DnsError("malformed DNS message: TXT string runs past its RDATA");
        strings.push(r.bytes(n, what).toString("latin1"));
      }
      data = { type: "TXT", strings };
      break;
    }
    case TYPE.TSIG: {
      const algorithm = r.name(what);
      const timeSigned = r.u48(what);
      const fudge = r.u16(what);
      const mac = Buffer.from(r.bytes(r.u16(what), what));
      const originalId = r.u16(what);
      const error = r.u16(what);
      const other = Buffer.from(r.bytes(r.u16(what), what));
      data = { type: "TSIG", tsig: { algorithm, timeSigned, fudge, mac, originalId, error, other } };
      break;
    }
    default:
      r.pos = end;
  }
  if (r.pos !== end) throw new DnsError(`malformed DNS message: ${what} does not fill its ${length} bytes`);
  return data;
}

function readRecord(r: Reader, section: string): ResourceRecord {
  const offset = r.pos;
  const name = r.name(`${section} record name`);
  const type = r.u16(section);
  const klass = r.u16(section);
  const ttl = r.u32(section);
  const length = r.u16(section);
  r.need(length, `${section} RDATA`);
  const rdata = Buffer.from(r.buf.subarray(r.pos, r.pos + length));
  const data = readRData(r, type, length);
  const rr: ResourceRecord = { name, type, class: klass, ttl, rdata, offset };
  if (data) rr.data = data;
  return rr;
}

/** Parses a whole message; anything malformed or left over is a DnsError. */
export function decodeMessage(buf: Buffer): Message {
  const r = new Reader(buf);
  const id = r.u16("header");
  const flags = r.u16("header");
  const [qd, an, ns, ar] = [r.u16("header"), r.u16("header"), r.u16("header"), r.u16("header")];
  const m = message({
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x400) !== 0,
    tc: (flags & 0x200) !== 0,
    rd: (flags & 0x100) !== 0,
    ra: (flags & 0x80) !== 0,
    rcode: flags & 0xf,
  });
  for (let i = 0; i < qd; i++) {
    m.questions.push({
      name: r.name("question name"),
      type: r.u16("question"),
      class: r.u16("question"),
    });
  }
  for (let i = 0; i < an; i++) m.answers.push(readRecord(r, "answer"));
  for (let i = 0; i < ns; i++) m.authorities.push(readRecord(r, "authority"));
  for (let i = 0; i < ar; i++) m.additionals.push(readRecord(r, "additional"));
  if (r.pos !== buf.length) {
    throw new DnsError(`malformed DNS message: ${buf.length - r.pos} bytes after the last record`);
  }
  return m;
}

/** Case-insensitive name equality, trailing dots ignored. */
export function sameName(a: string, b: string): boolean {
  return normalName(a) === normalName(b);
}

export function normalName(name: string): string {
  return name.replace(/\.$/, "").toLowerCase();
}
