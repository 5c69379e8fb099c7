/**
 * One DNS exchange with one server: UDP first, TCP when the answer is truncated (RFC 1035 4.2,
 * RFC 7766), each with a timeout; UDP queries are sent again while no answer came. An answer counts only when its ID matches and it is a response;
 * anything else arriving on the UDP socket is ignored (it may be spoofed or late).
 */
import { randomInt } from "node:crypto";
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP, Socket } from "node:net";
import { UsageError } from "../util/errors";
import {
  CLASS,
  DnsError,
  decodeMessage,
  encodeMessage,
  type Message,
  message,
  rcodeName,
  TYPE,
} from "./wire";

export interface DnsServer {
  host: string;
  port: number;
}

export const DEFAULT_TIMEOUT_MS = 5000;

/** Operator input (a usage error when bad): "host", "host:port", "1.2.3.4:53", "[::1]:53" or "::1" -> { host, port } (port 53 by default). */
export function parseServer(text: string): DnsServer {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  let host = text;
  let port = "53";
  if (bracket) {
    host = bracket[1] as string;
    port = bracket[2] ?? "53";
  } else if (isIP(text) !== 6 && text.includes(":")) {
    const i = text.lastIndexOf(":");
    host = text.slice(0, i);
    port = text.slice(i + 1);
  }
  const n = Number(port);
  if (!host || !/^\d+$/.test(port) || n < 1 || n > 65535) {
    throw new UsageError(
      `invalid DNS server "${text}": expected HOST or HOST:PORT (e.g. ns1.example.com:53)`,
    );
  }
  return { host, port: n };
}

export function serverLabel(s: DnsServer): string {
  return isIP(s.host) === 6 ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

async function address(s: DnsServer): Promise<{ address: string; family: 4 | 6 }> {
  const fam = isIP(s.host);
  if (fam) return { address: s.host, family: fam as 4 | 6 };
  try {
    const r = await lookup(s.host);
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (e) {
    throw new DnsError(`cannot resolve the DNS server name ${s.host}: ${(e as Error).message}`, { cause: e });
  }
}

function isAnswerTo(id: number, m: Message): boolean {
  return m.qr && m.id === id;
}

function udpExchange(
  addr: { address: string; family: 4 | 6 },
  s: DnsServer,
  query: Buffer,
  id: number,
  timeoutMs: number,
) {
  return new Promise<Buffer>((resolve, reject) => {
    const sock = createSocket(addr.family === 6 ? "udp6" : "udp4");
    let finished = false;
    const done = (err: Error | undefined, buf?: Buffer) => {
      if (finished) return; // a send error and an 'error' event may both report one failure
      finished = true;
      clearTimeout(timer);
      clearInterval(resend);
      sock.close();
      if (err) reject(err);
      else resolve(buf as Buffer);
    };
    const timer = setTimeout(
      () => done(new DnsError(`no answer from DNS server ${serverLabel(s)} over UDP within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on("error", (e) =>
      done(new DnsError(`DNS over UDP to ${serverLabel(s)} failed: ${e.message}`, { cause: e })),
    );
    sock.on("message", (buf, rinfo) => {
      if (rinfo.address !== addr.address || rinfo.port !== s.port) return;
      try {
        if (!isAnswerTo(id, decodeMessage(buf))) return;
      } catch (e) {
        // A truncated UDP answer may be cut mid-record: the header alone tells us to use TCP.
        if (buf.length >= 12 && buf.readUInt16BE(0) === id && (buf.readUInt16BE(2) & 0x8200) === 0x8200) {
          return done(undefined, buf);
        }
        return done(e as Error);
      }
      done(undefined, buf);
    });
    const send = () =>
      sock.send(query, s.port, addr.address, (e) => {
        if (e) done(new DnsError(`DNS over UDP to ${serverLabel(s)} failed: ${e.message}`, { cause: e }));
      });
    // A lost datagram is sent again, three times within the timeout; the same ID answers any copy
    // (an UPDATE applied twice is harmless: adding a present record or deleting an absent one is a no-op).
    const resend = setInterval(send, Math.max(50, Math.floor(timeoutMs / 4)));
    send();
  });
}

function tcpExchange(addr: { address: string }, s: DnsServer, query: Buffer, timeoutMs: number) {
  return new Promise<Buffer>((resolve, reject) => {
    const sock = new Socket();
    let got = Buffer.alloc(0);
    const done = (err: Error | undefined, buf?: Buffer) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(buf as Buffer);
    };
    const timer = setTimeout(
      () => done(new DnsError(`no answer from DNS server ${serverLabel(s)} over TCP within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on("error", (e) =>
      done(new DnsError(`DNS over TCP to ${serverLabel(s)} failed: ${e.message}`, { cause: e })),
    );
    sock.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        done(undefined, got.subarray(2, 2 + got.readUInt16BE(0)));
      }
    });
    sock.on("end", () =>
      done(new DnsError(`DNS server ${serverLabel(s)} closed the TCP connection before answering`)),
    );
    sock.connect(s.port, addr.address, () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
  });
}

/**
 * Sends `query` (whose first two bytes are its ID) and returns the raw answer: over UDP, then over
 * TCP when that answer has TC set. `tcp` forces TCP (queries larger than 512 bytes use it anyway).
 */
export async function exchange(
  server: DnsServer,
  query: Buffer,
  opts: { timeoutMs?: number; tcp?: boolean } = {},
): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const id = query.readUInt16BE(0);
  const addr = await address(server);
  if (!opts.tcp && query.length <= 512) {
    const buf = await udpExchange(addr, server, query, id, timeoutMs);
    if ((buf.readUInt16BE(2) & 0x200) === 0) return buf;
  }
  const buf = await tcpExchange(addr, server, query, timeoutMs);
  if (!isAnswerTo(id, decodeMessage(buf))) {
    throw new DnsError(`DNS server ${serverLabel(server)} answered over TCP with a different message ID`);
  }
  return buf;
}

/** A random 16-bit message ID (from node:crypto: together with the random source port, it is what keeps forged UDP answers out). */
export function newId(): number {
  return randomInt(0x10000);
}

/**
 * One non-recursive question to one server; returns the parsed answer whatever its rcode (the
 * caller decides what NXDOMAIN or REFUSED mean for it).
 */
export async function query(
  server: DnsServer,
  name: string,
  type: number,
  opts: { timeoutMs?: number; recursive?: boolean } = {},
): Promise<Message> {
  const id = newId();
  const q = message({ id, rd: opts.recursive ?? false, questions: [{ name, type, class: CLASS.IN }] });
  return decodeMessage(await exchange(server, encodeMessage(q), opts));
}

/** The TXT strings of `name` at `server`, each record's strings joined; [] for NXDOMAIN/no data. */
export async function queryTxt(
  server: DnsServer,
  name: string,
  opts: { timeoutMs?: number } = {},
): Promise<string[]> {
  const m = await query(server, name, TYPE.TXT, opts);
  if (m.rcode !== 0 && m.rcode !== 3) {
    throw new DnsError(
      `DNS server ${serverLabel(server)} answered ${rcodeName(m.rcode)} to a TXT query for ${name}`,
      {
        rcode: rcodeName(m.rcode),
      },
    );
  }
  return m.answers.flatMap((rr) => (rr.data?.type === "TXT" ? [rr.data.strings.join("")] : []));
}
