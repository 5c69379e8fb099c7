/**
 * src/dns/tsig.ts: BIND key files (RFC 8945 keys as tsig-keygen writes them) and the checks on a
 * signed answer. The answers here are signed by a small server-side signer written from RFC 8945
 * 4.3 (request MAC, then the message with the TSIG taken out, then the TSIG variables); real BIND9
 * signatures are checked in test/e2e/dns-rfc2136.test.ts.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { parseTsigKey, signMessage, type TsigKey, verifyAnswer } from "../../../src/dns/tsig";
import {
  CLASS,
  DnsError,
  decodeMessage,
  encodeMessage,
  encodeName,
  encodeRecord,
  message,
  OPCODE,
  TYPE,
} from "../../../src/dns/wire";
import { UsageError } from "../../../src/util/errors";

const SECRET = Buffer.alloc(32, 7).toString("base64");
const KEY: TsigKey = { name: "wile-test", algorithm: "hmac-sha256", secret: Buffer.alloc(32, 7) };

describe("tsig: BIND key files", () => {
  test("tsig-keygen's format, with comments, a trailing dot on the name and upper-case algorithm", () => {
    const text = `# made by tsig-keygen\nkey "wile-test." {\n\talgorithm HMAC-SHA256; // the default\n\tsecret "${SECRET}";\n};\n/* end */\n`;
    assert.deepEqual(parseTsigKey(text, "k.key"), KEY);
  });

  test('a secret holding "//" or "#" is the secret, not the start of a comment (tsig-keygen writes such keys)', () => {
    const b64 = Buffer.concat([
      Buffer.alloc(24, 1),
      Buffer.from([0xff, 0xff, 0xff, 0xfb, 0xff, 0xbf]),
    ]).toString("base64");
    assert.ok(b64.includes("//"), b64);
    const text = `key "k" { algorithm hmac-sha256; secret "${b64}"; }; // ok\n# done\n`;
    assert.deepEqual(parseTsigKey(text, "k.key").secret, Buffer.from(b64, "base64"));
  });

  test("several keys: the named one is taken; without a name it is a usage error listing them", () => {
    const text = `key "a" { algorithm hmac-sha256; secret "${SECRET}"; };\nkey b { algorithm hmac-sha512; secret "${SECRET}"; };`;
    assert.equal(parseTsigKey(text, "k", "b").algorithm, "hmac-sha512");
    assert.throws(() => parseTsigKey(text, "k"), /holds 2 keys \(a, b\)/);
    assert.throws(() => parseTsigKey(text, "k", "c"), /no key named "c" \(found: a, b\)/);
  });

  test("unsupported algorithms, missing or short secrets and empty files are usage errors that never show the secret", () => {
    const cases: [string, RegExp][] = [
      [
        `key "k" { algorithm hmac-md5; secret "${SECRET}"; };`,
        /uses hmac-md5; wile supports hmac-sha256 and hmac-sha512/,
      ],
      [`key "k" { secret "${SECRET}"; };`, /has no algorithm/],
      [`key "k" { algorithm hmac-sha256; };`, /has no base64 secret/],
      [`key "k" { algorithm hmac-sha256; secret "not base64!"; };`, /has no base64 secret/],
      [`key "k" { algorithm hmac-sha256; secret "c2hvcnQ="; };`, /shorter than 16 bytes/],
      ["", /no key statement found/],
    ];
    for (const [text, pattern] of cases) {
      assert.throws(
        () => parseTsigKey(text, "/home/u/tsig.key"),
        (e: unknown) =>
          e instanceof UsageError &&
          pattern.test(e.message) &&
          e.message.includes("/home/u/tsig.key") &&
          !e.message.includes(SECRET) &&
          /tsig-keygen/.test(e.hint ?? ""),
      );
    }
  });
});

/** An answer to `request` signed as a server does (RFC 8945 4.3.3), with fields to spoil. */
function signedAnswer(
  requestMac: Buffer,
  opts: { key?: TsigKey; time?: number; error?: number; tamper?: boolean; macLength?: number } = {},
): Buffer {
  const key = opts.key ?? KEY;
  const body = encodeMessage(message({ id: 42, qr: true, opcode: OPCODE.UPDATE, rcode: opts.error ? 9 : 0 }));
  const time = opts.time ?? Math.floor(Date.now() / 1000);
  const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
  const u48 = (n: number) => {
    const b = Buffer.alloc(6);
    b.writeUIntBE(n, 0, 6);
    return b;
  };
  const vars = Buffer.concat([
    encodeName(key.name, true),
    u16(CLASS.ANY),
    Buffer.alloc(4),
    encodeName(key.algorithm),
    u48(time),
    u16(300),
    u16(opts.error ?? 0),
    u16(0),
  ]);
  const hash = key.algorithm === "hmac-sha256" ? "sha256" : "sha512";
  let mac = createHmac(hash, key.secret)
    .update(Buffer.concat([u16(requestMac.length), requestMac, body, vars]))
    .digest();
  if (opts.error) mac = Buffer.alloc(0);
  if (opts.macLength !== undefined) mac = mac.subarray(0, opts.macLength);
  const rdata = Buffer.concat([
    encodeName(key.algorithm),
    u48(time),
    u16(300),
    u16(mac.length),
    mac,
    u16(42),
    u16(opts.error ?? 0),
    u16(0),
  ]);
  const signed = Buffer.from(body);
  signed.writeUInt16BE(1, 10);
  if (opts.tamper) signed.writeUInt16BE(signed.readUInt16BE(2) | 0x80, 2); // RA flipped after signing
  return Buffer.concat([
    signed,
    encodeRecord({ name: key.name, type: TYPE.TSIG, class: CLASS.ANY, ttl: 0, rdata }),
  ]);
}

describe("tsig: signing and verifying (RFC 8945)", () => {
  const request = encodeMessage(message({ id: 42, opcode: OPCODE.UPDATE }));

  test("a signed request carries one TSIG record, last, whose MAC covers the message and the variables", () => {
    const now = 1_800_000_000_000;
    const s = signMessage(request, KEY, now);
    const m = decodeMessage(s.wire);
    assert.equal(m.additionals.length, 1);
    const t = m.additionals[0];
    assert.equal(t?.name, "wile-test");
    assert.equal(t?.class, CLASS.ANY);
    assert.deepEqual(t?.data?.type === "TSIG" && t.data.tsig, {
      algorithm: "hmac-sha256",
      timeSigned: 1_800_000_000,
      fudge: 300,
      mac: s.mac,
      originalId: 42,
      error: 0,
      other: Buffer.alloc(0),
    });
    assert.equal(s.mac.length, 32);
    assert.equal(signMessage(request, { ...KEY, algorithm: "hmac-sha512" }, now).mac.length, 64);
  });

  test("a correctly signed answer verifies", () => {
    const mac = Buffer.alloc(32, 1);
    assert.equal(verifyAnswer(signedAnswer(mac), KEY, mac, "ns:53").rcode, 0);
  });

  test("an answer changed after signing, or signed over another request MAC, is BADSIG", () => {
    const mac = Buffer.alloc(32, 1);
    for (const answer of [signedAnswer(mac, { tamper: true }), signedAnswer(Buffer.alloc(32, 2))]) {
      assert.throws(
        () => verifyAnswer(answer, KEY, mac, "ns:53"),
        (e: unknown) =>
          e instanceof DnsError && e.rcode === "BADSIG" && /ns:53 does not verify/.test(e.message),
      );
    }
    assert.throws(
      () => verifyAnswer(signedAnswer(mac, { macLength: 10 }), KEY, mac, "ns:53"),
      /does not verify/,
    );
  });

  test("an answer signed outside the fudge is BADTIME", () => {
    const mac = Buffer.alloc(32, 1);
    const old = signedAnswer(mac, { time: Math.floor(Date.now() / 1000) - 3600 });
    assert.throws(
      () => verifyAnswer(old, KEY, mac, "ns:53"),
      (e: unknown) => e instanceof DnsError && e.rcode === "BADTIME" && /clock/.test(e.hint ?? ""),
    );
  });

  test("the server's TSIG errors are named: BADKEY, BADSIG, BADTIME", () => {
    const mac = Buffer.alloc(32, 1);
    for (const [code, name] of [
      [17, "BADKEY"],
      [16, "BADSIG"],
      [18, "BADTIME"],
    ] as const) {
      assert.throws(
        () => verifyAnswer(signedAnswer(mac, { error: code }), KEY, mac, "ns:53"),
        (e: unknown) =>
          e instanceof DnsError &&
          e.rcode === name &&
          e.message === `DNS server ns:53 rejected the TSIG key "wile-test": NOTAUTH/${name}`,
      );
    }
  });

  test("an unsigned NOERROR answer is refused; an unsigned error answer is handed back for its rcode", () => {
    const plain = encodeMessage(message({ id: 42, qr: true, opcode: OPCODE.UPDATE }));
    assert.throws(() => verifyAnswer(plain, KEY, Buffer.alloc(32), "ns:53"), /without a TSIG signature/);
    const refused = encodeMessage(message({ id: 42, qr: true, opcode: OPCODE.UPDATE, rcode: 5 }));
    assert.equal(verifyAnswer(refused, KEY, Buffer.alloc(32), "ns:53").rcode, 5);
  });

  test("an answer signed with another key is refused", () => {
    const mac = Buffer.alloc(32, 1);
    const other: TsigKey = { ...KEY, name: "other" };
    assert.throws(
      () => verifyAnswer(signedAnswer(mac, { key: other }), KEY, mac, "ns:53"),
      /another key \(other/,
    );
  });
});
