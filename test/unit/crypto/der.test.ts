import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  bitString,
  boolean,
  children,
  contextSpecific,
  DerError,
  decodeInteger,
  decodeOid,
  decodeString,
  decodeTime,
  ia5String,
  integer,
  nullValue,
  octetString,
  oid,
  printableString,
  readAll,
  readDer,
  sequence,
  set,
  tlv,
  utf8String,
} from "../../../src/crypto/der";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => Buffer.from(h.replace(/\s+/g, ""), "hex");

describe("DER INTEGER (X.690 8.3)", () => {
  for (const [value, expected] of [
    [0, "020100"],
    [127, "02017f"],
    [128, "02020080"],
    [255, "020200ff"],
    [256, "02020100"],
    [65535, "020300ffff"],
  ] as const) {
    test(`encodes ${value} minimally with a sign byte when needed`, () => {
      assert.equal(hex(integer(value)), expected);
      assert.equal(hex(integer(BigInt(value))), expected);
      assert.equal(decodeInteger(readDer(integer(value)).content), BigInt(value));
    });
  }

  // Chosen behaviour: numbers and bigints are signed, negatives in two's complement (as DER requires).
  for (const [value, expected] of [
    [-1, "0201ff"],
    [-128, "020180"],
    [-129, "0202ff7f"],
    [-256, "0202ff00"],
  ] as const) {
    test(`encodes negative ${value} in two's complement and decodes it back`, () => {
      assert.equal(hex(integer(value)), expected);
      assert.equal(decodeInteger(readDer(integer(value)).content), BigInt(value));
    });
  }

  test("round-trips a bigint wider than 64 bits", () => {
    const big = (1n << 200n) + 12345n;
    assert.equal(decodeInteger(readDer(integer(big)).content), big);
    assert.equal(decodeInteger(readDer(integer(-big)).content), -big);
  });

  test("treats a Uint8Array as an unsigned magnitude: strips leading zeros, adds 00 before a high bit", () => {
    assert.equal(hex(integer(bytes("000000017f"))), "0202017f");
    assert.equal(hex(integer(bytes("87654321"))), "02050087654321");
    assert.equal(hex(integer(bytes("0087654321"))), "02050087654321");
    assert.equal(hex(integer(bytes("0000"))), "020100");
    assert.equal(hex(integer(new Uint8Array())), "020100");
  });

  test("rejects unsafe numbers instead of losing precision", () => {
    assert.throws(() => integer(2 ** 60), DerError);
    assert.throws(() => integer(1.5), DerError);
  });
});

describe("DER OBJECT IDENTIFIER (X.690 8.19)", () => {
  for (const [dotted, expected] of [
    ["1.2.840.113549.1.1.11", "06092a864886f70d01010b"],
    ["2.5.29.17", "0603551d11"],
    ["1.3.6.1.4.1.311.21.7", "06092b0601040182371507"],
    ["2.999.1234", "060488378952"],
    ["0.9.2342.19200300.100.1.1", "060a0992268993f22c640101"],
  ] as const) {
    test(`encodes ${dotted} and decodes it back`, () => {
      assert.equal(hex(oid(dotted)), expected);
      assert.equal(decodeOid(readDer(oid(dotted)).content), dotted);
    });
  }

  test("round-trips an arc beyond 2^64 (UUID OID, 2.25.x)", () => {
    const dotted = "2.25.329800735698586629295641978511506172918";
    assert.equal(decodeOid(readDer(oid(dotted)).content), dotted);
  });

  test("rejects malformed dotted text and out-of-range first arcs", () => {
    for (const bad of ["", "1", "1..2", "3.1", "1.40", "a.b"]) assert.throws(() => oid(bad), DerError, bad);
  });

  test("reader rejects non-minimal and truncated arcs", () => {
    assert.throws(() => decodeOid(bytes("2a8001")), DerError);
    assert.throws(() => decodeOid(bytes("2a86")), DerError);
    assert.throws(() => decodeOid(new Uint8Array()), DerError);
  });
});

describe("DER lengths", () => {
  test("uses the long form for a 300-byte OCTET STRING and reads it back", () => {
    const content = Buffer.alloc(300, 0xab);
    const encoded = octetString(content);
    assert.equal(hex(encoded.subarray(0, 4)), "0482012c");
    const node = readDer(encoded);
    assert.equal(node.headerLength, 4);
    assert.deepEqual(node.content, content);
    assert.equal(node.raw.length, 304);
  });

  test("uses one length byte up to 127 and 0x81 for 128..255", () => {
    assert.equal(hex(octetString(Buffer.alloc(127)).subarray(0, 2)), "047f");
    assert.equal(hex(octetString(Buffer.alloc(128)).subarray(0, 3)), "048180");
  });
});

describe("DER writer types", () => {
  test("encodes the simple types", () => {
    assert.equal(hex(nullValue()), "0500");
    assert.equal(hex(boolean(true)), "0101ff");
    assert.equal(hex(boolean(false)), "010100");
    assert.equal(hex(bitString(bytes("a0"), 5)), "030205a0");
    assert.equal(hex(utf8String("é")), "0c02c3a9");
    assert.equal(hex(printableString("Ab 1")), "130441622031");
    assert.equal(hex(ia5String("a.b")), "1603612e62");
    assert.equal(hex(tlv(0x04, bytes("01"))), "040101");
  });

  test("rejects characters a string type cannot hold", () => {
    assert.throws(() => printableString("a@b"), DerError);
    assert.throws(() => ia5String("bücher.example"), DerError);
    assert.throws(() => bitString(bytes("00"), 8), DerError);
  });

  test("context-specific tags: EXPLICIT constructed around a TLV, IMPLICIT primitive around raw bytes", () => {
    assert.equal(hex(contextSpecific(0, integer(2), true)), "a003020102");
    assert.equal(hex(contextSpecific(2, Buffer.from("a"), false)), "820161");
    assert.throws(() => contextSpecific(31, Buffer.alloc(0), false), DerError);
  });

  test("SET sorts its elements by encoding (X.690 11.6), SEQUENCE keeps order", () => {
    assert.equal(hex(set(integer(2), integer(1))), "3106020101020102");
    assert.equal(hex(sequence(integer(2), integer(1))), "3006020102020101");
  });
});

describe("DER reader", () => {
  test("reads nested structure with class, tag number and constructed flag", () => {
    const encoded = sequence(oid("2.5.29.17"), contextSpecific(3, octetString(bytes("01")), true));
    const root = readDer(encoded);
    assert.equal(root.tagClass, "universal");
    assert.equal(root.tagNumber, 16);
    assert.equal(root.constructed, true);
    const [id, wrapped] = children(root);
    assert.equal(decodeOid(id?.content ?? Buffer.alloc(0)), "2.5.29.17");
    assert.equal(wrapped?.tagClass, "context");
    assert.equal(wrapped?.tagNumber, 3);
    assert.equal(hex(children(wrapped as never)[0]?.content ?? Buffer.alloc(0)), "01");
  });

  test("reads at an offset and leaves the rest alone", () => {
    const buf = Buffer.concat([nullValue(), integer(5), Buffer.from([0xff])]);
    const node = readDer(buf, 2);
    assert.equal(decodeInteger(node.content), 5n);
  });

  test("reads high-tag-number form", () => {
    const node = readDer(bytes("9f2101aa"));
    assert.equal(node.tagNumber, 33);
    assert.equal(node.tagClass, "context");
    assert.equal(node.headerLength, 3);
  });

  test("rejects truncated input", () => {
    for (const bad of ["", "30", "3004020101", "0482012c00", "04820100"]) {
      assert.throws(() => readDer(bytes(bad)), DerError, bad);
    }
  });

  test("rejects indefinite length", () => {
    assert.throws(() => readDer(bytes("3080020101 0000")), /indefinite/);
  });

  test("rejects non-minimal length encodings", () => {
    assert.throws(() => readDer(bytes("04810100")), /non-minimal/);
    assert.throws(() => readDer(bytes("0482000100")), /non-minimal/);
  });

  test("rejects end-of-contents octets as a value", () => {
    assert.throws(() => readDer(bytes("0000")), DerError);
  });

  test("readAll covers the buffer exactly and rejects trailing garbage", () => {
    assert.equal(readAll(Buffer.concat([integer(1), nullValue()])).length, 2);
    assert.deepEqual(readAll(new Uint8Array()), []);
    assert.throws(() => readAll(Buffer.concat([integer(1), bytes("02")])), DerError);
    assert.throws(() => readAll(Buffer.concat([integer(1), bytes("0000")])), DerError);
  });

  test("children rejects a primitive node", () => {
    assert.throws(() => children(readDer(integer(1))), DerError);
  });

  test("decodes UTF8, Printable, IA5, T61 (Latin-1) and BMP strings", () => {
    assert.equal(decodeString(readDer(utf8String("Zürich"))), "Zürich");
    assert.equal(decodeString(readDer(printableString("Let's Encrypt"))), "Let's Encrypt");
    assert.equal(decodeString(readDer(ia5String("a@b.example"))), "a@b.example");
    assert.equal(decodeString(readDer(tlv(0x14, Buffer.from([0x66, 0xfc])))), "fü");
    assert.equal(decodeString(readDer(tlv(0x1e, Buffer.from("00e9006b", "hex")))), "ék");
    assert.throws(() => decodeString(readDer(integer(1))), DerError);
  });

  test("decodes UTCTime with the 1950/2049 pivot and GeneralizedTime with fractions", () => {
    const t = (tag: number, s: string) => decodeTime(readDer(tlv(tag, Buffer.from(s))));
    assert.equal(t(0x17, "250102030405Z").toISOString(), "2025-01-02T03:04:05.000Z");
    assert.equal(t(0x17, "500101000000Z").toISOString(), "1950-01-01T00:00:00.000Z");
    assert.equal(t(0x17, "491231235959Z").toISOString(), "2049-12-31T23:59:59.000Z");
    assert.equal(t(0x18, "20500101000000Z").toISOString(), "2050-01-01T00:00:00.000Z");
    assert.equal(t(0x18, "20240229120000.5Z").toISOString(), "2024-02-29T12:00:00.500Z");
    for (const bad of ["2501020304Z", "250102030405+0100", "230229000000Z", "251301000000Z"]) {
      assert.throws(() => t(0x17, bad), DerError, bad);
    }
    assert.throws(() => t(0x18, "20240101000000.50Z"), DerError);
  });
});
