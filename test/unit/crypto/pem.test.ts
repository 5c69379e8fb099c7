import assert from "node:assert/strict";
import { test } from "node:test";
import { fromPem, parsePemBlocks, splitPemChain, toPem } from "../../../src/crypto/pem";

const der = Buffer.from(Array.from({ length: 100 }, (_, i) => i));

test("toPem writes 64-character lines and a trailing newline (RFC 7468 2)", () => {
  const pem = toPem("CERTIFICATE", der);
  const lines = pem.split("\n");
  assert.equal(lines[0], "-----BEGIN CERTIFICATE-----");
  assert.deepEqual(
    lines.slice(1, 4).map((l) => l.length),
    [64, 64, 8],
  );
  assert.equal(lines[4], "-----END CERTIFICATE-----");
  assert.equal(lines[5], "");
  assert.equal(lines.length, 6);
  assert.deepEqual(fromPem(pem), [der]);
});

test("fromPem returns every block or only those with the label, ignoring text around them", () => {
  const text = `subject=CN = x\n${toPem("CERTIFICATE", der)}junk\r\n${toPem("PRIVATE KEY", Buffer.from("k"))}`;
  assert.equal(fromPem(text).length, 2);
  assert.deepEqual(fromPem(text, "PRIVATE KEY"), [Buffer.from("k")]);
  assert.deepEqual(fromPem(text, "CERTIFICATE"), [der]);
  assert.deepEqual(fromPem("no pem here"), []);
});

test("fromPem accepts CRLF line ends and unwrapped base64", () => {
  const b64 = der.toString("base64");
  assert.deepEqual(fromPem(`-----BEGIN X-----\r\n${b64}\r\n-----END X-----\r\n`), [der]);
});

test("parsePemBlocks reads RFC 1421 headers of legacy encrypted keys", () => {
  const text =
    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
  const [block] = parsePemBlocks(text);
  assert.equal(block?.headers["Proc-Type"], "4,ENCRYPTED");
  assert.deepEqual(block?.der, Buffer.from([0, 0, 0]));
});

test("broken PEM is an error, not silently skipped", () => {
  assert.throws(() => fromPem("-----BEGIN X-----\nAAAA\n"), /no END line/);
  assert.throws(() => fromPem("-----BEGIN X-----\nAAAA\n-----END Y-----\n"), /no matching BEGIN/);
  assert.throws(() => fromPem("-----BEGIN X-----\n-----BEGIN X-----\n"), /not closed/);
  assert.throws(() => fromPem("-----BEGIN X-----\nAA*A\n-----END X-----\n"), /valid base64/);
  assert.throws(() => fromPem("-----BEGIN X-----\nAAA\n-----END X-----\n"), /valid base64/);
});

test("splitPemChain returns each certificate normalised, in order, skipping other blocks", () => {
  const a = Buffer.from("first certificate");
  const b = Buffer.from("second certificate");
  const messy = `${toPem("CERTIFICATE", a).replace(/\n/g, "\r\n")}\n\n${toPem("PRIVATE KEY", der)}${toPem("CERTIFICATE", b)}`;
  assert.deepEqual(splitPemChain(messy), [toPem("CERTIFICATE", a), toPem("CERTIFICATE", b)]);
  assert.deepEqual(splitPemChain(""), []);
});
