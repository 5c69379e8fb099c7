/**
 * Certificates made with openssl for tests that need a CA to misbehave: roots, intermediates and
 * leaves with any validity window, names and key. `openssl ca` is used rather than `openssl x509
 * -req` because OpenSSL 3.0 can only set a window in the past with `ca -startdate/-enddate`.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openssl } from "./certs";

export interface TestCa {
  cn: string;
  certFile: string;
  keyFile: string;
  pem: string;
  dir: string;
}

let seq = 0;

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/**
 * A CA certificate: self-signed, or issued by `parent` when given, valid for 10 years. With
 * notCa (and a parent) it is an end-entity certificate (CA:FALSE) that may still sign, to be
 * misused as an issuer.
 */
export function makeCa(dir: string, cn: string, parent?: TestCa, notCa = false): TestCa {
  const d = join(dir, `ca-${++seq}`);
  mkdirSync(d, { recursive: true });
  const ca: TestCa = { cn, dir: d, certFile: join(d, "ca.pem"), keyFile: join(d, "ca.key"), pem: "" };
  writeFileSync(join(d, "index.txt"), "");
  writeFileSync(
    join(d, "ca.ext"),
    `basicConstraints=critical,CA:${notCa ? "FALSE" : "TRUE"}\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`,
  );
  if (!parent) {
    openssl([
      "req",
      "-x509",
      ...EC,
      "-keyout",
      ca.keyFile,
      "-out",
      ca.certFile,
      "-subj",
      `/O=wile test/CN=${cn}`,
      "-days",
      "3650",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
  } else {
    const csr = join(d, "ca.csr");
    openssl(["req", "-new", ...EC, "-keyout", ca.keyFile, "-out", csr, "-subj", `/O=wile test/CN=${cn}`]);
    sign(parent, csr, ca.certFile, join(d, "ca.ext"), { days: 3650 });
  }
  ca.pem = readFileSync(ca.certFile, "utf8");
  return ca;
}

export interface LeafOptions {
  /** subjectAltName entries, e.g. ["DNS:a.example", "IP:192.0.2.1"]. */
  sans: string[];
  /** Validity as openssl ca -startdate/-enddate (YYYYMMDDHHMMSSZ); default now for 30 days. */
  start?: Date;
  end?: Date;
}

/** A leaf for the CSR (PEM text) signed by `ca`: PEM text. */
export function signLeaf(ca: TestCa, csrPem: string, opts: LeafOptions): string {
  const n = ++seq;
  const csr = join(ca.dir, `leaf-${n}.csr`);
  const out = join(ca.dir, `leaf-${n}.pem`);
  const ext = join(ca.dir, `leaf-${n}.ext`);
  writeFileSync(csr, csrPem);
  writeFileSync(
    ext,
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nsubjectAltName=${opts.sans.join(",")}\n`,
  );
  sign(ca, csr, out, ext, opts);
  return readFileSync(out, "utf8");
}

/** A fresh P-256 key and a CSR for it (PEM texts), for a leaf that is for another key. */
export function otherKeyCsr(dir: string): { keyPem: string; csrPem: string } {
  const n = ++seq;
  const key = join(dir, `other-${n}.key`);
  const csr = join(dir, `other-${n}.csr`);
  openssl(["req", "-new", ...EC, "-keyout", key, "-out", csr, "-subj", "/CN=other key"]);
  return { keyPem: readFileSync(key, "utf8"), csrPem: readFileSync(csr, "utf8") };
}

/** openssl ca's time format. */
function caTime(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, "").slice(0, 14)}Z`;
}

function sign(
  ca: TestCa,
  csr: string,
  out: string,
  ext: string,
  opts: { start?: Date; end?: Date; days?: number },
): void {
  const conf = join(ca.dir, "openssl-ca.cnf");
  writeFileSync(
    conf,
    [
      "[ca]",
      "default_ca = c",
      "[c]",
      `database = ${join(ca.dir, "index.txt")}`,
      `new_certs_dir = ${ca.dir}`,
      "default_md = sha256",
      "policy = p",
      "unique_subject = no",
      "email_in_dn = no",
      "rand_serial = yes",
      "[p]",
      "commonName = optional",
      "organizationName = optional",
      "",
    ].join("\n"),
  );
  const start = opts.start ?? new Date(Date.now() - 60_000);
  const end = opts.end ?? new Date(start.getTime() + (opts.days ?? 30) * 86_400_000);
  openssl([
    "ca",
    "-batch",
    "-notext",
    "-config",
    conf,
    "-cert",
    ca.certFile,
    "-keyfile",
    ca.keyFile,
    "-in",
    csr,
    "-out",
    out,
    "-extfile",
    ext,
    "-startdate",
    caTime(start),
    "-enddate",
    caTime(end),
  ]);
}
