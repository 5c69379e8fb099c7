/**
 * Fuzz of the PEM parser (src/crypto/pem.ts): damaged chains (base64, BEGIN/END lines, RFC 1421
 * headers) either parse or throw PemError; what toPem writes parses back to the same bytes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { fromPem, PemError, parsePemBlocks, splitPemChain, toPem } from "../../../src/crypto/pem";
import { fuzz, onlyThrows } from "./fuzz";
import { mutatedText } from "./mutate";

const chain = readFileSync(join(import.meta.dirname, "fixtures", "chain.pem"), "utf8");
const [leaf] = fromPem(chain) as [Buffer];
/** An encrypted-key style block with RFC 1421 headers, and OpenSSL's text around the blocks. */
const withHeaders = `Bag Attributes\n    friendlyName: x\nsubject=CN = fuzz.example.org\n${toPem(
  "RSA PRIVATE KEY",
  leaf.subarray(0, 90),
).replace(
  "-----\n",
  "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n",
)}${chain.replace(/\n/g, "\r\n")}`;

const label = fc.stringMatching(/^[A-Z0-9 ]{0,20}$/);
const input = fc.oneof(
  { weight: 4, arbitrary: mutatedText(chain) },
  { weight: 3, arbitrary: mutatedText(withHeaders) },
  {
    weight: 1,
    arbitrary: fc.tuple(label, fc.uint8Array({ maxLength: 100 })).chain(([l, b]) => mutatedText(toPem(l, b))),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 80, unit: "binary" }) },
);

test("fuzz: the PEM parser throws only PemError on damaged chains and keys", async (t) => {
  await fuzz(
    t,
    "pem",
    0x9e3,
    fc.property(input, (text) => {
      const blocks = onlyThrows(PemError, () => parsePemBlocks(text));
      const ders = onlyThrows(PemError, () => fromPem(text, "CERTIFICATE"));
      const split = onlyThrows(PemError, () => splitPemChain(text));
      assert.equal(ders.ok, blocks.ok);
      assert.equal(split.ok, blocks.ok);
      if (!blocks.ok || !ders.ok || !split.ok) return;
      for (const b of blocks.value) {
        assert.equal(typeof b.label, "string");
        for (const v of Object.values(b.headers)) assert.equal(typeof v, "string");
      }
      // A chain split and joined again reads as the same certificates.
      assert.deepEqual(fromPem(split.value.join(""), "CERTIFICATE"), ders.value);
    }),
  );
});

test("fuzz: toPem output parses back to the same label and bytes, with text around it", async (t) => {
  const around = fc.string({ maxLength: 30 }).map((s) => s.replace(/-/g, ""));
  await fuzz(
    t,
    "pem-writer",
    0x9e4,
    fc.property(label, fc.uint8Array({ maxLength: 300 }), around, around, (l, bytes, before, after) => {
      const text = `${before}\n${toPem(l, bytes)}${after}`;
      assert.deepEqual(parsePemBlocks(text), [{ label: l, headers: {}, der: Buffer.from(bytes) }]);
    }),
  );
});
