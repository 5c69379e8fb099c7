/**
 * TSIG (RFC 8945): signing a request and verifying the answer with a shared HMAC key, and reading
 * that key from a file in BIND's format, as tsig-keygen and ddns-confgen write it:
 *
 *     key "wile-test" {
 *         algorithm hmac-sha256;
 *         secret "base64...";
 *     };
 *
 * The secret never appears in an error message.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { UsageError } from "../util/errors";
import {
  CLASS,
  DnsError,
  decodeMessage,
  encodeName,
  encodeRecord,
  type Message,
  rcodeName,
  type Tsig,
  TYPE,
  uint,
} from "./wire";

export type TsigAlgorithm = "hmac-sha256" | "hmac-sha512";

const HASH: Record<TsigAlgorithm, string> = { "hmac-sha256": "sha256", "hmac-sha512": "sha512" };

export interface TsigKey {
  /** The key's name, as the server knows it (e.g. "wile-test"). */
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** Allowed difference between our clock and the server's, in seconds (RFC 8945 recommends 300). */
export const FUDGE = 300;

/**
 * The key named `name` (or the only key) in BIND key-file text. `source` names the file in errors.
 * Comments (#, //, C-style) are allowed, as BIND allows them.
 */
export function parseTsigKey(text: string, source: string, name?: string): TsigKey {
  // Comments go, quoted strings stay whole: a base64 secret may hold "//" (about one key in 50).
  const clean = text.replace(
    /("(?:[^"\\\n]|\\.)*")|\/\*[\s\S]*?\*\/|(?:#|\/\/)[^\n]*/g,
    (_, quoted?: string) => (quoted === undefined ? " " : quoted),
  );
  const keys: TsigKey[] = [];
  const bad = (what: string) =>
    new UsageError(`TSIG key file ${source}: ${what}`, {
      hint: 'expected BIND\'s format: key "NAME" { algorithm hmac-sha256; secret "BASE64"; }; (tsig-keygen NAME writes it)',
    });
  for (const m of clean.matchAll(/\bkey\s+("([^"]+)"|([^\s{"]+))\s*\{([^}]*)\}\s*;?/g)) {
    const keyName = (m[2] ?? m[3] ?? "").replace(/\.$/, "");
    const body = m[4] ?? "";
    const alg = /\balgorithm\s+"?([A-Za-z0-9.-]+)"?\s*;/.exec(body)?.[1]?.toLowerCase().replace(/\.$/, "");
    const secret = /\bsecret\s+"([^"]*)"\s*;/.exec(body)?.[1];
    if (!alg) throw bad(`key "${keyName}" has no algorithm`);
    if (alg !== "hmac-sha256" && alg !== "hmac-sha512") {
      throw bad(`key "${keyName}" uses ${alg}; wile supports hmac-sha256 and hmac-sha512`);
    }
    if (secret === undefined || !/^[A-Za-z0-9+/\s]+=*$/.test(secret))
      throw bad(`key "${keyName}" has no base64 secret`);
    const bytes = Buffer.from(secret.replace(/\s/g, ""), "base64");
    if (bytes.length < 16) throw bad(`key "${keyName}" has a secret shorter than 16 bytes`);
    keys.push({ name: keyName, algorithm: alg, secret: bytes });
  }
  if (keys.length === 0) throw bad("no key statement found");
  if (name !== undefined) {
    const k = keys.find((k) => k.name.toLowerCase() === name.replace(/\.$/, "").toLowerCase());
    if (!k) throw bad(`no key named "${name}" (found: ${keys.map((k) => k.name).join(", ")})`);
    return k;
  }
  if (keys.length > 1)
    throw bad(`holds ${keys.length} keys (${keys.map((k) => k.name).join(", ")}); name the one to use`);
  return keys[0] as TsigKey;
}

/** Reads and parses a BIND key file (see parseTsigKey). */
export function readTsigKeyFile(path: string, name?: string): TsigKey {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(
      `cannot read the TSIG key file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  return parseTsigKey(text, path, name);
}

/** The TSIG variables of RFC 8945 4.3.3 (digested after the message). */
function variables(key: TsigKey, t: Tsig): Buffer {
  return Buffer.concat([
    encodeName(key.name, true),
    uint(CLASS.ANY, 2),
    Buffer.alloc(4), // TTL 0
    encodeName(t.algorithm, true),
    uint(t.timeSigned, 6),
    uint(t.fudge, 2),
    uint(t.error, 2),
    uint(t.other.length, 2),
    t.other,
  ]);
}

function mac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(HASH[key.algorithm], key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

function tsigRdata(t: Tsig): Buffer {
  return Buffer.concat([
    encodeName(t.algorithm),
    uint(t.timeSigned, 6),
    uint(t.fudge, 2),
    uint(t.mac.length, 2),
    t.mac,
    uint(t.originalId, 2),
    uint(t.error, 2),
    uint(t.other.length, 2),
    t.other,
  ]);
}

/**
 * Appends a TSIG record to an encoded message (its ARCOUNT goes up by one). Returns the signed
 * message and the request MAC, which the answer's MAC covers.
 */
export function signMessage(wire: Buffer, key: TsigKey, now = Date.now()): { wire: Buffer; mac: Buffer } {
  const t: Tsig = {
    algorithm: key.algorithm,
    timeSigned: Math.floor(now / 1000),
    fudge: FUDGE,
    mac: Buffer.alloc(0),
    originalId: wire.readUInt16BE(0),
    error: 0,
    other: Buffer.alloc(0),
  };
  t.mac = mac(key, [wire, variables(key, t)]);
  const signed = Buffer.from(wire);
  signed.writeUInt16BE(signed.readUInt16BE(10) + 1, 10);
  const rr = encodeRecord({ name: key.name, type: TYPE.TSIG, class: CLASS.ANY, ttl: 0, rdata: tsigRdata(t) });
  return { wire: Buffer.concat([signed, rr]), mac: t.mac };
}

/**
 * Checks the TSIG of an answer to a request signed with `key` whose MAC was `requestMac`, and
 * returns the parsed answer. A TSIG error from the server (BADSIG, BADKEY, BADTIME) or a missing,
 * wrong or stale signature is a DnsError naming `server`.
 */
export function verifyAnswer(
  answer: Buffer,
  key: TsigKey,
  requestMac: Buffer,
  server: string,
  now = Date.now(),
): Message {
  const m = decodeMessage(answer);
  const last = m.additionals[m.additionals.length - 1];
  const hint =
    "check that the key name, algorithm and secret match the key the server's allow-update or update-policy names, and that this host's clock is right";
  if (!last || last.type !== TYPE.TSIG || last.data?.type !== "TSIG" || last.offset === undefined) {
    if (m.additionals.some((rr) => rr.type === TYPE.TSIG)) {
      throw new DnsError(`DNS server ${server} sent a TSIG record that is not the last record`);
    }
    if (m.rcode !== 0) return m; // an unsigned error answer: the caller reports the rcode
    throw new DnsError(`DNS server ${server} answered without a TSIG signature to a signed request`, {
      hint,
    });
  }
  const t = last.data.tsig;
  if (t.error !== 0) {
    const name = rcodeName(t.error);
    throw new DnsError(
      `DNS server ${server} rejected the TSIG key "${key.name}": ${rcodeName(m.rcode)}/${name}`,
      {
        rcode: name,
        hint,
      },
    );
  }
  if (last.name.toLowerCase() !== key.name.toLowerCase() || t.algorithm.toLowerCase() !== key.algorithm) {
    throw new DnsError(
      `DNS server ${server} signed its answer with another key (${last.name}, ${t.algorithm})`,
      { hint },
    );
  }
  const unsigned = Buffer.from(answer.subarray(0, last.offset));
  unsigned.writeUInt16BE(t.originalId, 0);
  unsigned.writeUInt16BE(m.additionals.length - 1, 10);
  const want = mac(key, [uint(requestMac.length, 2), requestMac, unsigned, variables(key, t)]);
  if (t.mac.length !== want.length || !timingSafeEqual(t.mac, want)) {
    throw new DnsError(`the TSIG signature of the answer from DNS server ${server} does not verify`, {
      rcode: "BADSIG",
      hint,
    });
  }
  const skew = Math.abs(Math.floor(now / 1000) - t.timeSigned);
  if (skew > t.fudge) {
    throw new DnsError(
      `the answer from DNS server ${server} was signed ${skew} s away from this host's clock`,
      {
        rcode: "BADTIME",
        hint,
      },
    );
  }
  return m;
}
