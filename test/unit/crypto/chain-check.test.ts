/**
 * checkChain (issue 10 finding 1): what a CA sends is checked before it is installed. Every chain
 * here is made by openssl (test/helpers/test-ca.ts) for a key wile made and a CSR wile wrote.
 */
import assert from "node:assert/strict";
import type { KeyObject } from "node:crypto";
import { before, describe, test } from "node:test";
import { createCsr } from "../../../src/crypto/csr";
import { generateKey } from "../../../src/crypto/keys";
import { fromPem, toPem } from "../../../src/crypto/pem";
import { type ChainExpectations, ChainRejected, checkChain } from "../../../src/crypto/x509";
import { makeCa, otherKeyCsr, signLeaf, type TestCa } from "../../helpers/test-ca";
import { tempDir } from "./openssl";

const MIN = 60_000;
const DAY = 86_400_000;
const NAMES = ["DNS:chain.example", "DNS:www.chain.example", "IP:192.0.2.7"];

describe("checkChain: a chain from the CA is checked before it is installed", () => {
  const dir = tempDir();
  let root: TestCa;
  let inter: TestCa;
  let stranger: TestCa;
  let key: KeyObject;
  let csrPem = "";
  let good = "";
  let expect: ChainExpectations;

  const rejects = (pem: string, why: RegExp, e: Partial<ChainExpectations> = {}) =>
    assert.throws(
      () => checkChain(pem, { ...expect, ...e }),
      (err: unknown) => err instanceof ChainRejected && err.exitCode === 1 && why.test(err.message),
    );

  before(async () => {
    root = makeCa(dir, "Chain Test Root");
    inter = makeCa(dir, "Chain Test Intermediate", root);
    stranger = makeCa(dir, "Unrelated Root");
    key = await generateKey("ec-256");
    const identifiers = [
      { type: "dns" as const, value: "chain.example" },
      { type: "dns" as const, value: "www.chain.example" },
      { type: "ip" as const, value: "192.0.2.7" },
    ];
    csrPem = toPem("CERTIFICATE REQUEST", createCsr({ key, identifiers }));
    good = signLeaf(inter, csrPem, { sans: NAMES });
    expect = { key, identifiers, now: new Date() };
  });

  test("a good chain: leaf and issuer split apart, and what it verified to is said", () => {
    const r = checkChain(good + inter.pem, expect);
    assert.equal(r.leaf.subjectCN, "chain.example");
    assert.deepEqual(r.leaf.dnsNames, ["chain.example", "www.chain.example"]);
    assert.equal(r.chainPem, inter.pem);
    assert.equal(fromPem(r.leafPem).length, 1);
    assert.match(r.verified, /"Chain Test Intermediate", each signed by the next/);
    assert.match(r.verified, /issuer "Chain Test Root" was not sent/);
    assert.deepEqual(r.warnings, []);
  });

  test("the root: a chain ending at a self-signed root, or at an issuer the current chain holds", () => {
    assert.match(
      checkChain(good + inter.pem + root.pem, expect).verified,
      /self-signed root "Chain Test Root"/,
    );
    assert.match(
      checkChain(good + inter.pem, { ...expect, knownIssuers: inter.pem + root.pem }).verified,
      /top certificate is the one in the current certificate's chain/,
    );
    assert.match(
      checkChain(good + inter.pem, { ...expect, knownIssuers: root.pem }).verified,
      /verifies with "Chain Test Root" from the current certificate's chain/,
    );
    // A current chain that has nothing to do with it is no reason to refuse (CAs rotate).
    assert.match(
      checkChain(good + inter.pem, { ...expect, knownIssuers: stranger.pem }).verified,
      /not known/,
    );
  });

  test("garbage: no block, a broken block, a block that is not a certificate", () => {
    rejects("<html>502 Bad Gateway</html>", /no certificate/);
    rejects("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", /not valid PEM/);
    const junk = toPem("CERTIFICATE", Buffer.from("30820100deadbeef".repeat(20), "hex"));
    rejects(junk, /the leaf certificate is not a valid X\.509 certificate/);
    rejects(good + junk, /certificate 2 of the chain is not a valid X\.509 certificate/);
  });

  test("the validity window: expired, not yet valid (5 minutes of skew allowed for a CA clock ahead), short-lived is fine", () => {
    const now = Date.now();
    const expired = signLeaf(inter, csrPem, {
      sans: NAMES,
      start: new Date(now - 90 * DAY),
      end: new Date(now - DAY),
    });
    rejects(expired + inter.pem, /a certificate that expired on 20/);
    // Short-lived certificates are legitimate: one that expires in 2 minutes is still valid.
    const short = signLeaf(inter, csrPem, {
      sans: NAMES,
      start: new Date(now - MIN),
      end: new Date(now + 2 * MIN),
    });
    assert.doesNotThrow(() => checkChain(short + inter.pem, expect));
    const future = signLeaf(inter, csrPem, { sans: NAMES, start: new Date(now + 2 * 3600_000) });
    rejects(future + inter.pem, /not valid before 20.*this machine's clock says/);
    const slightlyAhead = signLeaf(inter, csrPem, { sans: NAMES, start: new Date(now + 2 * MIN) });
    assert.doesNotThrow(() => checkChain(slightlyAhead + inter.pem, expect));
    // The same good chain, seen from a clock 6 minutes behind the CA's, is refused.
    rejects(good + inter.pem, /not valid before/, { now: new Date(now - 6 * MIN - MIN) });
  });

  test("a chain for another key than the one in the CSR", () => {
    const other = signLeaf(inter, otherKeyCsr(dir).csrPem, { sans: NAMES });
    rejects(other + inter.pem, /for another key than the one in wile's request/);
  });

  test("a leaf without every name asked for (DNS and IP), naming what is missing and what it has", () => {
    const fewer = signLeaf(inter, csrPem, { sans: ["DNS:chain.example"] });
    rejects(fewer + inter.pem, /without www\.chain\.example, 192\.0\.2\.7 \(it names chain\.example\)/);
    const noIp = signLeaf(inter, csrPem, {
      sans: ["DNS:chain.example", "DNS:www.chain.example", "IP:192.0.2.8"],
    });
    rejects(noIp + inter.pem, /without 192\.0\.2\.7/);
    // DNS names compare without case (RFC 4343).
    const upper = signLeaf(inter, csrPem, {
      sans: ["DNS:CHAIN.example", "DNS:www.Chain.example", "IP:192.0.2.7"],
    });
    assert.doesNotThrow(() => checkChain(upper + inter.pem, expect));
  });

  test("an unrelated CA certificate: instead of the issuer, after it, or as the only issuer", () => {
    rejects(
      good + stranger.pem,
      /does not link: the leaf "chain.example" was not issued by the next certificate in the chain, "Unrelated Root"/,
    );
    rejects(
      good + inter.pem + stranger.pem,
      /does not link: "Chain Test Intermediate" was not issued by .*"Unrelated Root"/,
    );
    rejects(good + root.pem, /does not link/);
  });

  test("a signature that does not verify, though the names link", () => {
    const der = fromPem(good)[0] as Buffer;
    const bad = Buffer.from(der);
    bad[bad.length - 2] = (bad[bad.length - 2] as number) ^ 0x55;
    rejects(
      toPem("CERTIFICATE", bad) + inter.pem,
      /signature on the leaf "chain.example" does not verify with the key of "Chain Test Intermediate"/,
    );
  });

  test("only the leaf: clients could not verify it", () => {
    rejects(
      good,
      /only the leaf certificate, without the certificate of its issuer "Chain Test Intermediate"/,
    );
  });

  test("an issuer that is not a CA certificate (CA:FALSE, though it may sign)", () => {
    const notCa = makeCa(dir, "Not A CA", inter, true);
    const leaf = signLeaf(notCa, csrPem, { sans: NAMES });
    rejects(
      leaf + notCa.pem + inter.pem,
      /"Not A CA", the issuer of the leaf "chain\.example", is not a CA certificate/,
    );
  });
});
