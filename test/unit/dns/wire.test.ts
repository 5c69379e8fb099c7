/**
 * src/dns/wire.ts: RFC 1035 messages. Round trips of what wile writes and reads, name
 * compression as RFC 1035 4.1.4 draws it, and every kind of malformed input (truncated anywhere,
 * pointer loops, oversized names, RDATA that lies about its length, random mutations) ends in a
 * DnsError, never another exception.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  CLASS,
  DnsError,
  decodeMessage,
  encodeMessage,
  encodeName,
  encodeTxt,
  type Message,
  message,
  OPCODE,
  type ResourceRecord,
  rcodeName,
  TYPE,
} from "../../../src/dns/wire";
import { WileError } from "../../../src/util/errors";

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

function rr(name: string, type: number, rdata: Buffer, ttl = 60): ResourceRecord {
  return { name, type, class: CLASS.IN, ttl, rdata };
}

/** An answer holding one record of every type wile parses. */
function sampleAnswer(): Message {
  const soa = Buffer.concat([
    encodeName("ns1.example.test"),
    encodeName("hostmaster.example.test"),
    ...[2026112901, 3600, 600, 86400, 60].map(u32),
  ]);
  return message({
    id: 0xbeef,
    qr: true,
    aa: true,
    rd: true,
    rcode: 3,
    questions: [{ name: "_acme-challenge.example.test", type: TYPE.TXT, class: CLASS.IN }],
    answers: [
      rr("_acme-challenge.example.test", TYPE.TXT, encodeTxt("abc")),
      rr("_acme-challenge.example.test", TYPE.TXT, Buffer.concat([encodeTxt("first"), encodeTxt("second")])),
      rr("www.example.test", TYPE.CNAME, encodeName("example.test")),
      rr("example.test", TYPE.A, Buffer.from([127, 0, 0, 1])),
      rr("example.test", TYPE.AAAA, Buffer.from("20010db8000000000000000000000001", "hex")),
    ],
    authorities: [
      rr("example.test", TYPE.SOA, soa),
      rr("example.test", TYPE.NS, encodeName("ns1.example.test")),
    ],
    additionals: [rr("example.test", 99, Buffer.from("opaque"))],
  });
}

function expectDnsError(buf: Buffer, pattern: RegExp): void {
  assert.throws(
    () => decodeMessage(buf),
    (e: unknown) => e instanceof DnsError && e instanceof WileError && pattern.test(e.message),
  );
}

describe("dns wire: round trips (RFC 1035 4.1)", () => {
  test("a query encodes to the RFC layout and decodes to itself", () => {
    const q = message({
      id: 0x1234,
      rd: true,
      questions: [{ name: "example.test", type: TYPE.SOA, class: CLASS.IN }],
    });
    const wire = encodeMessage(q);
    assert.equal(wire.toString("hex"), "123401000001000000000000076578616d706c65047465737400" + "00060001");
    const back = decodeMessage(wire);
    assert.deepEqual(back, q);
  });

  test("an answer with TXT, CNAME, A, AAAA, SOA, NS and an unknown type decodes field by field", () => {
    const m = decodeMessage(encodeMessage(sampleAnswer()));
    assert.equal(m.id, 0xbeef);
    assert.deepEqual(
      [m.qr, m.aa, m.tc, m.rd, m.ra, m.rcode, rcodeName(m.rcode)],
      [true, true, false, true, false, 3, "NXDOMAIN"],
    );
    assert.deepEqual(
      m.answers.map((r) => r.data),
      [
        { type: "TXT", strings: ["abc"] },
        { type: "TXT", strings: ["first", "second"] },
        { type: "CNAME", name: "example.test" },
        { type: "A", address: "127.0.0.1" },
        { type: "AAAA", address: "2001:db8:0:0:0:0:0:1" },
      ],
    );
    assert.deepEqual(m.authorities[0]?.data, {
      type: "SOA",
      soa: {
        mname: "ns1.example.test",
        rname: "hostmaster.example.test",
        serial: 2026112901,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 60,
      },
    });
    assert.deepEqual(m.authorities[1]?.data, { type: "NS", name: "ns1.example.test" });
    assert.equal(m.additionals[0]?.data, undefined);
    assert.equal(m.additionals[0]?.rdata.toString(), "opaque");
    // Re-encoding what was read gives the same bytes (offsets and parsed data are extra fields).
    const again = encodeMessage({
      ...m,
      answers: m.answers.map(({ name, type, class: c, ttl, rdata }) => ({
        name,
        type,
        class: c,
        ttl,
        rdata,
      })),
    });
    assert.deepEqual(again, encodeMessage(sampleAnswer()));
  });

  test("UPDATE opcode and the record offsets survive a round trip", () => {
    const u = message({
      id: 7,
      opcode: OPCODE.UPDATE,
      questions: [{ name: "example.test", type: TYPE.SOA, class: CLASS.IN }],
      authorities: [
        { name: "x.example.test", type: TYPE.TXT, class: CLASS.NONE, ttl: 0, rdata: encodeTxt("v") },
      ],
    });
    const wire = encodeMessage(u);
    const back = decodeMessage(wire);
    assert.equal(back.opcode, OPCODE.UPDATE);
    assert.equal(back.authorities[0]?.class, CLASS.NONE);
    assert.equal(back.authorities[0]?.offset, 12 + encodeName("example.test").length + 4);
  });

  test("TXT values longer than 255 bytes are cut into several strings, and an empty value is one empty string", () => {
    const long = "a".repeat(600);
    const rdata = encodeTxt(long);
    assert.equal(rdata.length, 600 + 3);
    const m = decodeMessage(encodeMessage(message({ answers: [rr("t.test", TYPE.TXT, rdata)] })));
    assert.deepEqual(m.answers[0]?.data, {
      type: "TXT",
      strings: ["a".repeat(255), "a".repeat(255), "a".repeat(90)],
    });
    assert.deepEqual(encodeTxt(""), Buffer.from([0]));
  });

  test("names: root, trailing dot, lower-casing for TSIG, and bad names refused when writing", () => {
    assert.deepEqual(encodeName(""), Buffer.from([0]));
    assert.deepEqual(encodeName("a.b."), encodeName("a.b"));
    assert.deepEqual(encodeName("Wile-Test", true), encodeName("wile-test"));
    assert.throws(() => encodeName("a..b"), DnsError);
    assert.throws(() => encodeName(`${"x".repeat(64)}.test`), /1 to 63/);
    assert.throws(() => encodeName(Array(128).fill("ab").join(".")), /longer than 255/);
  });
});

describe("dns wire: name compression on read (RFC 1035 4.1.4)", () => {
  // The RFC's example: F.ISI.ARPA at 20, FOO.F.ISI.ARPA pointing at it, ARPA pointing into it.
  const header = Buffer.from("000081000000000300000000", "hex");
  const pad = Buffer.alloc(0);
  const first = Buffer.concat([Buffer.from([1, 0x46, 3, 0x49, 0x53, 0x49, 4, 0x41, 0x52, 0x50, 0x41, 0])]);
  const rrTail = Buffer.from("00ff00010000000000 00".replace(/ /g, ""), "hex").subarray(0, 10);

  test("pointers to earlier names and into the middle of them are followed", () => {
    // Three answers with empty unknown-type RDATA: F.ISI.ARPA, FOO.<ptr 12>, <ptr 14> (ISI.ARPA).
    const foo = Buffer.from([3, 0x46, 0x4f, 0x4f, 0xc0, 12]);
    const ptr = Buffer.from([0xc0, 14]);
    const buf = Buffer.concat([header, pad, first, rrTail, foo, rrTail, ptr, rrTail]);
    const m = decodeMessage(buf);
    assert.deepEqual(
      m.answers.map((r) => r.name),
      ["F.ISI.ARPA", "FOO.F.ISI.ARPA", "ISI.ARPA"],
    );
  });

  test("a pointer to itself, forwards, or a loop is refused", () => {
    const self = Buffer.concat([
      header.subarray(0, 6),
      Buffer.from("000100000000", "hex"),
      Buffer.from([0xc0, 12]),
    ]);
    expectDnsError(Buffer.concat([self, rrTail]), /does not point backwards/);
    const fwd = Buffer.concat([
      header.subarray(0, 6),
      Buffer.from("000100000000", "hex"),
      Buffer.from([0xc0, 40]),
    ]);
    expectDnsError(Buffer.concat([fwd, rrTail, Buffer.alloc(40)]), /does not point backwards/);
    // 12: label "a" then a pointer back to 12: a loop through a label.
    const loop = Buffer.concat([
      header.subarray(0, 6),
      Buffer.from("000100000000", "hex"),
      Buffer.from([1, 0x61, 0xc0, 12]),
    ]);
    expectDnsError(Buffer.concat([loop, rrTail]), /does not point backwards/);
  });

  test("odd label bytes read as \\DDD escapes", () => {
    const name = Buffer.from([3, 0x61, 0x2e, 0x20, 4, 0x74, 0x65, 0x73, 0x74, 0]);
    const buf = Buffer.concat([header.subarray(0, 6), Buffer.from("000100000000", "hex"), name, rrTail]);
    assert.equal(decodeMessage(buf).answers[0]?.name, "a\\046\\032.test");
  });
});

describe("dns wire: malformed input is a DnsError", () => {
  const good = encodeMessage(sampleAnswer());

  test("every truncation of a valid answer", () => {
    for (let n = 0; n < good.length; n++) {
      assert.throws(() => decodeMessage(good.subarray(0, n)), DnsError, `cut at ${n} of ${good.length}`);
    }
  });

  test("bytes after the last record", () => {
    expectDnsError(Buffer.concat([good, Buffer.from([0])]), /1 bytes after the last record/);
  });

  test("RDATA lengths that lie, bad A/AAAA lengths, TXT strings past their RDATA", () => {
    const a = encodeMessage(message({ answers: [rr("x", TYPE.A, Buffer.from([1, 2, 3]))] }));
    expectDnsError(a, /A RDATA of 3 bytes/);
    const aaaa = encodeMessage(message({ answers: [rr("x", TYPE.AAAA, Buffer.alloc(4))] }));
    expectDnsError(aaaa, /AAAA RDATA of 4 bytes/);
    const txt = encodeMessage(message({ answers: [rr("x", TYPE.TXT, Buffer.from([5, 0x61]))] }));
    expectDnsError(txt, /TXT string runs past its RDATA/);
    // A CNAME whose name is shorter than its RDATA length claims.
    const cname = encodeMessage(
      message({ answers: [rr("x", TYPE.CNAME, Buffer.concat([encodeName("a"), Buffer.alloc(2)]))] }),
    );
    expectDnsError(cname, /does not fill its 5 bytes/);
    // RDLENGTH beyond the end of the message.
    const long = Buffer.from(a);
    long.writeUInt16BE(200, long.length - 5);
    expectDnsError(long, /runs past the end/);
  });

  test("reserved label types and names over 255 bytes", () => {
    const base = Buffer.concat([Buffer.from("000080000000000100000000", "hex")]);
    expectDnsError(Buffer.concat([base, Buffer.from([0x40, 0]), Buffer.alloc(10)]), /reserved label type/);
    // 5 labels of 63 bytes = 320 bytes of name.
    const label = Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)]);
    const big = Buffer.concat([base, label, label, label, label, label, Buffer.from([0]), Buffer.alloc(10)]);
    expectDnsError(big, /longer than 255 bytes/);
  });

  test("counts that promise more records than there are", () => {
    const lie = Buffer.from(good);
    lie.writeUInt16BE(0xffff, 6);
    expectDnsError(lie, /runs past the end/);
  });

  test("random mutations of a valid answer decode or throw DnsError, nothing else", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ at: fc.nat({ max: good.length - 1 }), byte: fc.integer({ min: 0, max: 255 }) }),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        (edits) => {
          const buf = Buffer.from(good);
          for (const e of edits) buf[e.at] = e.byte;
          try {
            decodeMessage(buf);
          } catch (e) {
            if (!(e instanceof DnsError)) throw e;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("random bytes decode or throw DnsError, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          decodeMessage(Buffer.from(bytes));
        } catch (e) {
          if (!(e instanceof DnsError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
