/**
 * The fuzz targets' findings, each as its minimal counterexample: a plain test that failed before the
 * fix in the module and passes after it.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseRetryAfter, RETRY_AFTER_MAX_MS } from "../../../src/acme/headers";
import { problemFromResponse } from "../../../src/acme/problem";
import { createCsr } from "../../../src/crypto/csr";
import { fromPem, PemError, toPem } from "../../../src/crypto/pem";
import { buildPfx } from "../../../src/crypto/pkcs12";
import { ChainRejected, certMatchesKey, checkChain } from "../../../src/crypto/x509";
import { AccountStore } from "../../../src/store/accounts";
import { configPath, readConfig } from "../../../src/store/config";
import { parseRenewalConfig, serializeRenewalConfig } from "../../../src/store/renewal";
import { inspectState, statePath } from "../../../src/store/state";
import { WileError } from "../../../src/util/errors";
import { renewalConfig } from "../../helpers/renewal";

const chain = readFileSync(join(import.meta.dirname, "fixtures", "chain.pem"), "utf8");

test("Retry-After: 8638204058156 seconds (past the end of Date) gives a rateLimited problem, not a RangeError", () => {
  const ms = parseRetryAfter("8638204058156");
  assert.equal(ms, RETRY_AFTER_MAX_MS);
  const p = problemFromResponse({
    status: 429,
    body: Buffer.from('{"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down"}'),
    contentType: "application/problem+json",
    url: "https://ca.example/acme/new-order",
    retryAfterMs: ms,
    links: [],
  });
  assert.match(p.hint ?? "", /try again after \d{4}-/);
  // 400 digits is Infinity as a number: also read as the maximum.
  assert.equal(parseRetryAfter("9".repeat(400)), RETRY_AFTER_MAX_MS);
});

test("certMatchesKey: a certificate whose key algorithm OID is unknown is a WileError, not OpenSSL's raw decode error", () => {
  const [leaf] = fromPem(chain, "CERTIFICATE") as [Buffer];
  // id-ecPublicKey 1.2.840.10045.2.1 -> 1.3.840.10045.2.1: Node still parses the certificate, but not its key.
  const at = leaf.indexOf(Buffer.from("06072a8648ce3d0201", "hex")) + 2;
  const damaged = Buffer.from(leaf);
  damaged[at] = 0x2b;
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  assert.throws(
    () => certMatchesKey(toPem("CERTIFICATE", damaged), key, "the certificate from the CA"),
    (err: unknown) =>
      err instanceof WileError &&
      /^the certificate from the CA: its public key cannot be read/.test(err.message),
  );
});

test("checkChain: a leaf whose key algorithm OID is unknown is ChainRejected, not OpenSSL's raw decode error", () => {
  const [leaf, ca] = fromPem(chain, "CERTIFICATE") as [Buffer, Buffer];
  const damaged = Buffer.from(leaf);
  damaged[leaf.indexOf(Buffer.from("06072a8648ce3d0201", "hex")) + 2] = 0x2b;
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
  assert.throws(
    () =>
      checkChain(toPem("CERTIFICATE", damaged) + toPem("CERTIFICATE", ca), {
        key,
        identifiers: [{ type: "dns", value: "fuzz.example.org" }],
        now: new Date("2027-01-01T00:00:00Z"),
      }),
    (err: unknown) =>
      err instanceof ChainRejected &&
      /^a chain in which the leaf certificate holds a public key that cannot be read/.test(err.message),
  );
});

test("PEM: a broken block is a PemError (an Error subclass callers can tell from a TypeError)", () => {
  assert.throws(() => fromPem("-----BEGIN X-----\nAAA\n-----END X-----\n"), PemError);
  assert.throws(() => fromPem("-----BEGIN X-----\nAAAA\n"), PemError);
});

test("renewal.json: an identifier named like an Object.prototype member needs a webroot of its own", () => {
  const cfg = renewalConfig("fuzz.example.org");
  cfg.identifiers.push({ type: "dns", value: "constructor" });
  assert.throws(
    () => parseRenewalConfig(serializeRenewalConfig(cfg), "renewal.json"),
    (err: unknown) =>
      err instanceof WileError && /"challenge\.webroots\.constructor" is missing/.test(err.message),
  );
  // Given in the file, it is a webroot like any other, "__proto__" too.
  const text = serializeRenewalConfig(cfg).replace(
    '"fuzz.example.org": "/srv"',
    '"fuzz.example.org": "/srv", "constructor": "/srv/c"',
  );
  assert.equal(parseRenewalConfig(text, "renewal.json").challenge.webroots.constructor, "/srv/c");
  const proto = JSON.parse(serializeRenewalConfig(renewalConfig("fuzz.example.org")));
  proto.identifiers.push({ type: "dns", value: "__proto__" });
  const protoText = JSON.stringify(proto).replace('"webroots":{', '"webroots":{"__proto__":"/srv/p",');
  const parsed = parseRenewalConfig(protoText, "renewal.json");
  assert.ok(Object.hasOwn(parsed.challenge.webroots, "__proto__"));
  assert.equal(Object.getOwnPropertyDescriptor(parsed.challenge.webroots, "__proto__")?.value, "/srv/p");
});

test("createCsr: an IP that is no address (0.0.0.00) or a name that is not ASCII is a WileError naming it", () => {
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  for (const [type, value, why] of [
    ["ip", "0.0.0.00", "it is not an IPv4 or IPv6 address"],
    ["dns", "\u00e9.example", "it is not ASCII"],
  ] as const) {
    assert.throws(
      () => createCsr({ key, identifiers: [{ type, value }] }),
      (err: unknown) =>
        err instanceof WileError &&
        err.message ===
          `the ${type === "ip" ? "IP address" : "DNS name"} ${JSON.stringify(value)} cannot go in a certificate request: ${why}`,
    );
  }
});

test("buildPfx: a password with a lone surrogate (JSON can hold \\ud800) is refused, not written unopenable", () => {
  // The check comes before the key and the certificate are read, so none are needed here.
  assert.throws(() => buildPfx({ keyPem: "", certPem: "", chainPems: [], password: "\ud800" }), {
    message: /the password is not valid Unicode text \(it holds a lone UTF-16 surrogate\)/,
  });
});

test("a store file holding a NUL (or a DEL as its version) is reported in one printable line", async () => {
  const home = mkdtempSync(join(tmpdir(), "wile-fuzz-regression-"));
  try {
    const oneLine = (message: string) => assert.match(message, /^[ -~]+$/, JSON.stringify(message));
    // V8 quotes the JSON text around the error in its message: here a raw NUL (or newlines, escapes).
    assert.throws(
      () => parseRenewalConfig("\u0000", "renewal.json"),
      (err: Error) => {
        oneLine(err.message);
        return true;
      },
    );
    const webroot = serializeRenewalConfig(renewalConfig("a.example")).replace(
      '"a.example": "/srv"',
      '"a.example": "/srv", "b\\u001b[31m\\n": "relative"',
    );
    assert.throws(
      () => parseRenewalConfig(webroot, "renewal.json"),
      (err: Error) => {
        oneLine(err.message);
        return true;
      },
    );
    mkdirSync(join(home, "certs", "a.example"), { recursive: true });
    for (const text of ["\u0000", '{"version": "\u007f"}']) {
      writeFileSync(statePath(home, "a.example"), text);
      oneLine((await inspectState(home, "a.example")).damage ?? "no damage reported");
      writeFileSync(configPath(home), text);
      await assert.rejects(readConfig(home), (err: Error) => {
        oneLine(err.message);
        return true;
      });
    }
    const accounts = new AccountStore(home);
    mkdirSync(accounts.dir("https://ca.example/dir"), { recursive: true });
    writeFileSync(join(accounts.dir("https://ca.example/dir"), "account.json"), "\u0000");
    await assert.rejects(accounts.readRecord("https://ca.example/dir"), (err: Error) => {
      oneLine(err.message);
      return true;
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
