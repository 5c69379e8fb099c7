/**
 * Fuzz of the DER reader (src/crypto/der.ts): whatever the bytes, readDer/readAll/children and the
 * decoders either answer or throw DerError - never a TypeError, RangeError or a hang.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import * as der from "../../../src/crypto/der";
import { DerError, type DerNode } from "../../../src/crypto/der";
import { fromPem } from "../../../src/crypto/pem";
import { fuzz, onlyThrows } from "./fuzz";
import { mutatedBytes, mutatedContent } from "./mutate";

const chain = readFileSync(join(import.meta.dirname, "fixtures", "chain.pem"), "utf8");
const [leafDer, caDer] = fromPem(chain, "CERTIFICATE") as [Buffer, Buffer];

/** Well-formed DER trees built with the writer: the reader's success paths, and mutation seeds. */
const dottedOid = fc
  .tuple(fc.nat(2), fc.nat(39), fc.array(fc.bigInt({ min: 0n, max: (1n << 70n) - 1n }), { maxLength: 5 }))
  .map(([a, b, rest]) => [a, b, ...rest].join("."));
const { tree } = fc.letrec<{ tree: Buffer; leaf: Buffer }>((tie) => ({
  leaf: fc.oneof(
    fc.bigInt({ min: -(1n << 130n), max: 1n << 130n }).map((v) => der.integer(v)),
    fc.uint8Array({ maxLength: 20 }).map((b) => der.integer(b)),
    dottedOid.map(der.oid),
    fc.string({ maxLength: 12, unit: "binary" }).map(der.utf8String),
    fc.stringMatching(/^[A-Za-z0-9 '()+,\-./:=?]{0,12}$/).map(der.printableString),
    fc.string({ maxLength: 12, unit: "binary-ascii" }).map(der.ia5String),
    fc.uint8Array({ maxLength: 24 }).map(der.octetString),
    fc.uint8Array({ maxLength: 24 }).map((b) => der.bitString(b, 0)),
    fc.constant(der.nullValue()),
    fc.boolean().map(der.boolean),
    fc
      .date({ noInvalidDate: true })
      .map((d) => der.tlv(0x18, Buffer.from(d.toISOString().replace(/[-:T]|\.000/g, "")))),
    fc.stringMatching(/^\d{12}Z$/).map((s) => der.tlv(0x17, Buffer.from(s))),
    fc.uint8Array({ maxLength: 8 }).map((b) => der.tlv(0x1e, b)),
  ),
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tie("leaf") as fc.Arbitrary<Buffer>,
    fc.array(tie("tree") as fc.Arbitrary<Buffer>, { maxLength: 4 }).map((items) => der.sequence(...items)),
    fc.array(tie("tree") as fc.Arbitrary<Buffer>, { maxLength: 3 }).map((items) => der.set(...items)),
    fc
      .tuple(fc.nat(30), tie("tree") as fc.Arbitrary<Buffer>)
      .map(([n, inner]) => der.contextSpecific(n, inner, true)),
    (tie("tree") as fc.Arbitrary<Buffer>).map(der.octetString),
  ),
}));

const input = fc.oneof(
  { weight: 3, arbitrary: mutatedBytes(leafDer) },
  { weight: 2, arbitrary: mutatedContent(leafDer) },
  { weight: 1, arbitrary: mutatedBytes(caDer) },
  { weight: 2, arbitrary: tree.chain((valid) => mutatedBytes(valid)) },
  { weight: 1, arbitrary: tree },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b)) },
);

/** Decodes one node the way the certificate code would; a DerError ends only this node. */
function walk(node: DerNode, depth = 0): void {
  // Re-encoding a node read from DER gives the same bytes: there is one DER form per value.
  if (node.tagNumber < 31)
    assert.ok(der.tlv(node.tagByte, node.content).equals(node.raw), "re-encoding differs");
  onlyThrows(DerError, () => {
    if (node.constructed) {
      for (const child of der.children(node)) walk(child, depth + 1);
      return;
    }
    if (node.tagClass !== "universal") return;
    switch (node.tagNumber) {
      case 2:
        der.decodeInteger(node.content);
        break;
      case 4:
        if (depth < 20) for (const inner of der.readAll(node.content)) walk(inner, depth + 1);
        break;
      case 6: {
        const dotted = der.decodeOid(node.content);
        assert.ok(der.oid(dotted).equals(node.raw), `OID ${dotted} does not re-encode to its input`);
        break;
      }
      case 12:
      case 19:
      case 20:
      case 22:
      case 26:
      case 30:
        assert.equal(typeof der.decodeString(node), "string");
        break;
      case 23:
      case 24:
        assert.ok(!Number.isNaN(der.decodeTime(node).getTime()), "decodeTime gave an invalid Date");
        break;
    }
  });
}

test("fuzz: the DER reader throws only DerError, on mutated certificates, mutated trees and random bytes", async (t) => {
  await fuzz(
    t,
    "der",
    0xde7,
    fc.property(input, fc.nat(8), (bytes, offset) => {
      const all = onlyThrows(DerError, () => der.readAll(bytes));
      if (all.ok) {
        assert.ok(
          Buffer.concat(all.value.map((n) => n.raw)).equals(bytes),
          "readAll does not cover the input",
        );
        for (const node of all.value) walk(node);
      }
      onlyThrows(DerError, () => der.readDer(bytes, offset));
    }),
  );
});

test("fuzz: DER writer values read back unchanged (INTEGER, OID, strings)", async (t) => {
  await fuzz(
    t,
    "der-writer",
    0xde8,
    fc.property(
      fc.bigInt({ min: -(1n << 300n), max: 1n << 300n }),
      dottedOid,
      fc.string({ maxLength: 30, unit: "binary" }),
      fc.string({ maxLength: 30, unit: "binary" }),
      (n, dotted, text, anyText) => {
        assert.equal(der.decodeInteger(der.readDer(der.integer(n)).content), n);
        assert.equal(der.decodeOid(der.readDer(der.oid(dotted)).content), dotted);
        assert.equal(der.decodeString(der.readDer(der.utf8String(text))), text);
        // IA5String refuses non-ASCII with DerError; ASCII reads back.
        const ia5 = onlyThrows(DerError, () => der.ia5String(anyText));
        // biome-ignore lint/suspicious/noControlCharactersInRegex: IA5 is exactly the 7-bit range
        assert.equal(ia5.ok, /^[\x00-\x7f]*$/.test(anyText));
        if (ia5.ok) assert.equal(der.decodeString(der.readDer(ia5.value)), anyText);
      },
    ),
  );
});
