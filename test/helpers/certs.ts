/**
 * Independent checks of what wile wrote, done with openssl (and node:crypto for key details), never
 * with wile's own code.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function openssl(args: string[], input?: string): string {
  try {
    return execFileSync("openssl", args, {
      input,
      stdio: ["pipe", "pipe", "pipe"],
      encoding: "utf8",
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    throw new Error(`openssl ${args.join(" ")} exited ${err.status}: ${err.stderr ?? ""}${err.stdout ?? ""}`);
  }
}

/** `openssl x509 -text` of a certificate file (the first certificate in it). */
export function certText(certFile: string): string {
  return openssl(["x509", "-in", certFile, "-noout", "-text"]);
}

/** DNS/IP names from the subjectAltName extension, as printed by `openssl x509 -text`, sorted. */
export function sanNames(certFile: string): string[] {
  const lines = certText(certFile).split("\n");
  const i = lines.findIndex((l) => l.includes("X509v3 Subject Alternative Name"));
  if (i < 0) return [];
  return (lines[i + 1] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => s.replace(/^DNS:/, "").replace(/^IP Address:/, "IP:"))
    .sort();
}

/**
 * The serial of a certificate file exactly as `openssl x509 -serial` prints it ("0A1B2C",
 * "87654321"): the one spelling wile prints too, so tests compare serials as strings, unchanged.
 */
export function serialHex(certFile: string): string {
  return opensslSerial(["-in", certFile]);
}

/** The same for PEM text (the first certificate in it; text around it is ignored). */
export function pemSerial(pem: string): string {
  return opensslSerial([], `${pem.trim()}\n`);
}

function opensslSerial(args: string[], input?: string): string {
  return openssl(["x509", "-noout", "-serial", ...args], input)
    .trim()
    .replace(/^serial=/, "");
}

/**
 * The serial (as openssl prints it) of the leaf served on 127.0.0.1:port, read with openssl s_client
 * with SNI `serverName`, after STARTTLS when `starttls` names the protocol.
 */
export function servedSerial(port: number, serverName: string, starttls?: "imap" | "smtp"): string {
  const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", serverName];
  const r = spawnSync("openssl", starttls ? [...args, "-starttls", starttls] : args, {
    input: "",
    encoding: "utf8",
    timeout: 15_000,
  });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout ?? "")?.[0];
  if (!pem) throw new Error(`openssl ${args.join(" ")} printed no certificate: ${r.stdout}${r.stderr}`);
  return pemSerial(pem);
}

export function issuerOf(certFile: string): string {
  return openssl(["x509", "-in", certFile, "-noout", "-issuer"]).trim();
}

/** True when the private key and the certificate hold the same public key (compared as PEM by openssl). */
export function keyMatchesCert(
  keyFile: string,
  certFile: string,
): { match: boolean; fromKey: string; fromCert: string } {
  const fromKey = openssl(["pkey", "-in", keyFile, "-pubout"]).trim();
  const fromCert = openssl(["x509", "-in", certFile, "-noout", "-pubkey"]).trim();
  return { match: fromKey === fromCert && fromKey.includes("BEGIN PUBLIC KEY"), fromKey, fromCert };
}

/** `openssl verify -CAfile root -untrusted chain cert`; returns openssl's output (throws on failure). */
export function verifyChain(rootPem: string, chainFile: string, certFile: string, dir: string): string {
  const rootFile = join(dir, `pebble-root-${Date.now()}-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(rootFile, rootPem);
  return openssl(["verify", "-CAfile", rootFile, "-untrusted", chainFile, certFile]).trim();
}

/** "ec-256" | "ec-384" | "rsa-2048" | ... as read by node:crypto from the PEM. */
export function keyTypeOf(keyFile: string): string {
  const k = createPrivateKey(readFileSync(keyFile));
  const d = k.asymmetricKeyDetails ?? {};
  if (k.asymmetricKeyType === "ec") {
    const curve =
      { prime256v1: "256", secp384r1: "384", secp521r1: "521" }[d.namedCurve ?? ""] ?? d.namedCurve;
    return `ec-${curve}`;
  }
  if (k.asymmetricKeyType === "rsa") return `rsa-${d.modulusLength}`;
  return String(k.asymmetricKeyType);
}

/** PEM certificate blocks in a file, in order. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

export function octal(m: number): string {
  return `0${m.toString(8)}`;
}

/** Every directory (not following symlinks) and every file holding a private key under root. */
export function walk(root: string): { dirs: string[]; keyFiles: string[]; files: string[] } {
  const dirs: string[] = [];
  const keyFiles: string[] = [];
  const files: string[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      dirs.push(p);
      for (const e of readdirSync(p)) visit(join(p, e));
      return;
    }
    if (!st.isFile()) return;
    files.push(p);
    if (st.size < 1 << 20 && readFileSync(p, "utf8").includes("PRIVATE KEY-----")) keyFiles.push(p);
  };
  visit(root);
  return { dirs, keyFiles, files };
}

/** Files (recursively) under dir, or [] when dir does not exist. */
export function filesUnder(dir: string): string[] {
  try {
    return walk(dir).files;
  } catch {
    return [];
  }
}
