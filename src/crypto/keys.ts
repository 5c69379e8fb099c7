/**
 * Certificate and account key pairs: the key types wile supports, generation, PEM in and out.
 * Keys are node:crypto KeyObjects; private keys are written as unencrypted PKCS#8.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { WileError } from "../util/errors";
import { parsePemBlocks, toPem } from "./pem";

export type KeyType = "ec-256" | "ec-384" | "rsa-2048" | "rsa-3072" | "rsa-4096";

export const KEY_TYPES: readonly KeyType[] = ["ec-256", "ec-384", "rsa-2048", "rsa-3072", "rsa-4096"];

export function isKeyType(s: string): s is KeyType {
  return (KEY_TYPES as readonly string[]).includes(s);
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** A new private key of the given type (RSA with public exponent 65537). */
export async function generateKey(type: KeyType): Promise<KeyObject> {
  switch (type) {
    case "ec-256":
    case "ec-384": {
      const namedCurve = type === "ec-256" ? "P-256" : "P-384";
      return (await generateKeyPairAsync("ec", { namedCurve })).privateKey;
    }
    case "rsa-2048":
    case "rsa-3072":
    case "rsa-4096": {
      const modulusLength = Number(type.slice(4));
      return (await generateKeyPairAsync("rsa", { modulusLength, publicExponent: 65537 })).privateKey;
    }
  }
}

const CURVES: Record<string, KeyType> = {
  prime256v1: "ec-256",
  "P-256": "ec-256",
  secp384r1: "ec-384",
  "P-384": "ec-384",
};

/** The wile key type of a private or public key, or null when wile does not support it. */
export function keyTypeOf(key: KeyObject): KeyType | null {
  if (key.type === "secret") return null;
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") return CURVES[details.namedCurve ?? ""] ?? null;
  if (key.asymmetricKeyType === "rsa") {
    const type = `rsa-${details.modulusLength}`;
    return isKeyType(type) ? type : null;
  }
  return null;
}

/** Unencrypted PKCS#8 PEM of a private key. */
export function privateKeyToPem(key: KeyObject): string {
  if (key.type !== "private") throw new Error(`privateKeyToPem needs a private key, got a ${key.type} key`);
  return String(key.export({ type: "pkcs8", format: "pem" }));
}

/** SubjectPublicKeyInfo DER of a key's public part (works for private and public keys). */
export function publicKeyDer(key: KeyObject): Buffer {
  const publicKey = key.type === "public" ? key : createPublicKey(key);
  return publicKey.export({ type: "spki", format: "der" });
}

const PRIVATE_LABELS = new Set(["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]);
const SUPPORTED = `Supported key types: ${KEY_TYPES.join(", ")}.`;

/**
 * The first private key in PEM text: PKCS#8 ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1
 * ("RSA PRIVATE KEY"). Other PEM blocks (a certificate next to the key) are skipped. Throws
 * WileError naming `source` (a file path) when there is no usable, unencrypted, supported key.
 */
export function privateKeyFromPem(pem: string, source = "the key"): KeyObject {
  const fail = (what: string, hint: string, cause?: unknown): never => {
    throw new WileError(`${source}: ${what}`, { hint, cause });
  };
  const makeNew = "Or let wile create a new key (leave out the key option).";
  let blocks: ReturnType<typeof parsePemBlocks> = [];
  try {
    blocks = parsePemBlocks(pem);
  } catch (err) {
    fail(
      `not a readable PEM file (${(err as Error).message})`,
      `Check that the file is intact. ${makeNew}`,
      err,
    );
  }
  const block = blocks.find((b) => PRIVATE_LABELS.has(b.label) || b.label === "ENCRYPTED PRIVATE KEY");
  if (!block) {
    const found = blocks.map((b) => b.label);
    const what =
      found.length === 0
        ? "no PEM private key found (expected a -----BEGIN PRIVATE KEY----- block)"
        : `not a private key: it holds ${found.map((l) => `"${l}"`).join(", ")}`;
    return fail(what, `Point wile at the private key file (PKCS#8, SEC1 or PKCS#1 PEM). ${makeNew}`);
  }
  if (block.label === "ENCRYPTED PRIVATE KEY" || /ENCRYPTED/i.test(block.headers["Proc-Type"] ?? "")) {
    fail(
      "the private key is encrypted with a passphrase",
      `wile runs unattended and needs an unencrypted key: openssl pkey -in ${source} -out key-plain.pem (then chmod 600 it).`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: toPem(block.label, block.der), format: "pem" });
  } catch (err) {
    return fail(
      `the "${block.label}" block could not be read as a private key (${(err as Error).message})`,
      `Check that the file is intact. ${makeNew}`,
      err,
    );
  }
  if (keyTypeOf(key) === null) {
    fail(`unsupported key: ${describeKey(key)}`, `${SUPPORTED} ${makeNew}`);
  }
  return key;
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") return `EC key on curve ${d.namedCurve ?? "unknown"}`;
  if (key.asymmetricKeyType === "rsa") return `RSA key of ${d.modulusLength} bits`;
  return `${key.asymmetricKeyType ?? "unknown"} key`;
}
