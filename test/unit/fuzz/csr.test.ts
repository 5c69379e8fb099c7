/**
 * Fuzz of the CSR writer (src/crypto/csr.ts): for generated identifiers (DNS names, wildcards, IPv4,
 * IPv6) and keys, the CSR read back with the DER reader holds exactly the names and the key given, in
 * order, and its signature verifies; a name that cannot go into a CSR (not ASCII, not an IP address)
 * is refused with a WileError naming it. A sample of 50 goes through `openssl req -verify`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { isIP } from "node:net";
import { test } from "node:test";
import fc from "fast-check";
import type { Identifier } from "../../../src/acme/types";
import { createCsr } from "../../../src/crypto/csr";
import * as der from "../../../src/crypto/der";
import { ipFromBytes } from "../../../src/crypto/ip";
import { publicKeyDer } from "../../../src/crypto/keys";
import { toPem } from "../../../src/crypto/pem";
import { WileError } from "../../../src/util/errors";
import { fuzz, onlyThrows } from "./fuzz";

const keys = (
  [
    [generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, "sha256"],
    [generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey, "sha384"],
    [generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey, "sha256"],
  ] as const
).map(([key, hash]) => ({ key, hash, publicKey: createPublicKey(key), spki: publicKeyDer(key) }));
/** P-384 and RSA signing is slow: one case in twenty each. */
const keyIndex = fc.oneof(
  { weight: 18, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constant(1) },
  { weight: 1, arbitrary: fc.constant(2) },
);

/** An IP address as RFC 5952 / the WHATWG URL parser write it: what ipFromBytes must give back. */
function canonicalIp(text: string): string {
  return text.includes(":") ? new URL(`http://[${text}]/`).hostname.slice(1, -1) : text;
}

const dnsName = fc.oneof(
  { weight: 4, arbitrary: fc.domain() },
  { weight: 1, arbitrary: fc.domain().map((d) => `*.${d}`) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9-]{1,20}){1,3}$/) },
);
const goodId: fc.Arbitrary<Identifier> = fc.oneof(
  { weight: 4, arbitrary: dnsName.map((value) => ({ type: "dns" as const, value })) },
  { weight: 1, arbitrary: fc.ipV4().map((value) => ({ type: "ip" as const, value })) },
  { weight: 1, arbitrary: fc.ipV6().map((value) => ({ type: "ip" as const, value })) },
);
/** Names that must be refused: not ASCII (an IDN not in xn-- form), or IP text Node does not read as an address. */
const badId: fc.Arbitrary<Identifier> = fc.oneof(
  fc
    .tuple(fc.domain(), fc.string({ minLength: 1, maxLength: 6, unit: "grapheme" }), fc.nat())
    .filter(([, u]) => [...u].some((ch) => (ch.codePointAt(0) as number) > 0x7f))
    .map(([d, u, at]) => ({
      type: "dns" as const,
      value: d.slice(0, at % (d.length + 1)) + u + d.slice(at % (d.length + 1)),
    })),
  fc
    .oneof(
      fc.ipV4Extended(),
      fc.domain(),
      fc.string({ maxLength: 12 }),
      fc.ipV6().map((ip) => `[${ip}]`),
    )
    .filter((v) => isIP(v) === 0)
    .map((value) => ({ type: "ip" as const, value })),
);

const csrCase = fc.record({
  key: keyIndex,
  identifiers: fc.array(goodId, { minLength: 1, maxLength: 5 }),
  bad: fc.option(fc.tuple(badId, fc.nat()), { freq: 4 }),
  mustStaple: fc.boolean(),
});
type CsrCase = typeof csrCase extends fc.Arbitrary<infer T> ? T : never;

function identifiersOf(c: CsrCase): Identifier[] {
  const ids = [...c.identifiers];
  if (c.bad) ids.splice(c.bad[1] % (ids.length + 1), 0, c.bad[0]);
  return ids;
}

/** Reads a CSR with the DER reader and checks it against what was asked for. */
function checkCsr(csr: Buffer, c: CsrCase): void {
  const { publicKey, hash, spki: keySpki } = keys[c.key] as (typeof keys)[number];
  const [info, , sig] = der.children(der.readDer(csr)) as [der.DerNode, der.DerNode, der.DerNode];
  assert.ok(
    verify(hash, info.raw, { key: publicKey, dsaEncoding: "der" }, sig.content.subarray(1)),
    "signature does not verify",
  );
  const [version, subject, spki, attrs] = der.children(info) as der.DerNode[];
  assert.equal(der.decodeInteger((version as der.DerNode).content), 0n);
  assert.ok((spki as der.DerNode).raw.equals(keySpki), "not the key given");
  const firstDns = c.identifiers.find((i) => i.type === "dns")?.value;
  const cn = der
    .children(subject as der.DerNode)
    .map((rdn) => der.decodeString(der.children(der.children(rdn)[0] as der.DerNode)[1] as der.DerNode));
  assert.deepEqual(cn, firstDns !== undefined && firstDns.length <= 64 ? [firstDns] : []);
  const [extReq] = der.children(attrs as der.DerNode) as [der.DerNode];
  const [oid, values] = der.children(extReq) as [der.DerNode, der.DerNode];
  assert.equal(der.decodeOid(oid.content), "1.2.840.113549.1.9.14");
  const extensions = der.children(der.children(values)[0] as der.DerNode).map((e) => der.children(e));
  const byOid = new Map(extensions.map((parts) => [der.decodeOid((parts[0] as der.DerNode).content), parts]));
  const san = byOid.get("2.5.29.17") as der.DerNode[];
  assert.equal(
    san.length === 3,
    cn.length === 0,
    "subjectAltName is critical exactly when the subject is empty",
  );
  const names = der
    .children(der.readDer((san[san.length - 1] as der.DerNode).content))
    .map((n) =>
      n.tagNumber === 2
        ? { type: "dns", value: n.content.toString("latin1") }
        : { type: "ip", value: ipFromBytes(n.content) },
    );
  assert.deepEqual(
    names,
    c.identifiers.map((i) => (i.type === "ip" ? { type: "ip", value: canonicalIp(i.value) } : i)),
  );
  assert.equal(byOid.has("1.3.6.1.5.5.7.1.24"), c.mustStaple);
}

function run(c: CsrCase): Buffer | null {
  const ids = identifiersOf(c);
  const r = onlyThrows(WileError, () =>
    createCsr({
      key: (keys[c.key] as (typeof keys)[number]).key,
      identifiers: ids,
      mustStaple: c.mustStaple,
    }),
  );
  if (c.bad) {
    assert.ok(!r.ok, `${JSON.stringify(c.bad[0])} was not refused`);
    assert.ok(r.error.message.includes(JSON.stringify(c.bad[0].value)), r.error.message);
    return null;
  }
  assert.ok(r.ok);
  checkCsr(r.value, c);
  return r.value;
}

test("fuzz: createCsr writes the names and key given, read back with the DER reader; refuses what it cannot encode", async (t) => {
  await fuzz(
    t,
    "csr",
    0xc5a,
    fc.property(csrCase, (c) => void run(c)),
  );
});

test("fuzz: a sample of CSRs verifies with openssl req -verify and lists the same names", async (t) => {
  await fuzz(
    t,
    "csr-openssl",
    0xc5b,
    fc.property(
      csrCase.map((c) => ({ ...c, bad: null })),
      (c) => {
        const csr = run(c) as Buffer;
        const r = spawnSync("openssl", ["req", "-verify", "-noout", "-text"], {
          input: toPem("CERTIFICATE REQUEST", csr),
          encoding: "utf8",
        });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr + r.stdout, /verify OK/i);
        const lines = r.stdout.split("\n");
        const sanLine =
          lines[lines.findIndex((l) => l.includes("X509v3 Subject Alternative Name")) + 1] ?? "";
        const listed = sanLine
          .split(", ")
          .map((s) => s.trim())
          .map((s) =>
            s.startsWith("DNS:") ? s.slice(4) : canonicalIp(s.replace(/^IP Address:/, "").toLowerCase()),
          );
        assert.deepEqual(
          listed,
          c.identifiers.map((i) => (i.type === "ip" ? canonicalIp(i.value) : i.value)),
        );
      },
    ),
    50,
  );
});
