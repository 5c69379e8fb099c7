/**
 * The "postfix" target: the key and certificate chain go where Postfix's smtpd reads them, then
 * `postfix reload`, then a check over SMTP STARTTLS (127.0.0.1:25 unless told otherwise).
 *
 * Where: asked from Postfix on every deploy (`postconf -xh`, so `$config_directory/x.pem` style
 * values come expanded; `--postfix-config DIR` is `postconf -c DIR` and `postfix -c DIR reload`):
 * - `smtpd_tls_chain_files` (Postfix 3.4+, takes precedence when set): a list of PEM files that,
 *   concatenated, read key1, cert1, chain1, key2, cert2, ... (postconf(5)). With one file that holds
 *   one key (or nothing yet), the file becomes key + leaf + chain. With several keys (RSA and ECDSA
 *   side by side, say), the key of the same algorithm as wile's is replaced together with the
 *   certificates after it, wherever they are, and every other key and chain stays as it was.
 * - else `smtpd_tls_cert_file` (fullchain) and `smtpd_tls_key_file` (key; Postfix's default is the
 *   certificate file itself, which then gets key + fullchain).
 * - `--postfix-chain-file PATH` (one combined file) or `--postfix-cert PATH --postfix-key PATH`
 *   name the files instead.
 */
import { createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { path, type Values } from "../util/settings";
import * as mail from "./mail-common";
import { keyThenFullchain } from "./pem-bundle";
import { type DeployContext, DeployError, defineTarget } from "./target";

export const POSTFIX_VERIFY_DEFAULTS = { port: 25, protocol: "smtp" as const };
export const DEFAULT_POSTFIX_VERIFY = "127.0.0.1:25";

const POSTCONF: mail.Tool = { name: "postconf", service: "Postfix", pkg: "postfix" };
const POSTFIX: mail.Tool = { name: "postfix", service: "Postfix", pkg: "postfix" };

const { config, ...rest } = mail.settings({
  kind: "postfix",
  configArg: "DIR",
  help: {
    config:
      "postfix: a configuration directory other than the default (postconf -c DIR, postfix -c DIR reload)",
    cert: "postfix: write the fullchain here (smtpd_tls_cert_file style, with --postfix-key) instead of where postconf says",
    key: "postfix: write the key here (smtpd_tls_key_file style, with --postfix-cert)",
    reload: "postfix: reload with this command (sh -c) instead of postfix reload, e.g. 'sudo postfix reload'",
    verify: `postfix: after the reload, check the certificate served there (default ${DEFAULT_POSTFIX_VERIFY}, SMTP STARTTLS; :587 for submission, :465 is TLS; --no-postfix-verify skips it)`,
  },
  verify: { fallback: DEFAULT_POSTFIX_VERIFY, defaults: POSTFIX_VERIFY_DEFAULTS },
});

const settings = {
  config,
  /** Explicit combined file (key, leaf, chain), as smtpd_tls_chain_files reads it. */
  chainFile: path({
    arg: "PATH",
    help: "postfix: write key, certificate and chain to this one file (as smtpd_tls_chain_files reads it) instead of where postconf says",
  }),
  ...rest,
};

export type PostfixConfig = Values<typeof settings>;

/** One piece of a PEM file: a block (with its label) or the text around blocks, kept verbatim. */
export interface PemSegment {
  text: string;
  label?: string;
}

const BLOCK_RE = /-----BEGIN ([^-\r\n]+)-----\r?\n[\s\S]*?-----END \1-----[^\S\r\n]*(?:\r?\n)?/g;

/** Splits PEM text into blocks and the text between them; joining the texts gives the input back. */
export function pemSegments(text: string): PemSegment[] {
  const out: PemSegment[] = [];
  let at = 0;
  for (const m of text.matchAll(BLOCK_RE)) {
    const start = m.index ?? 0;
    if (start > at) out.push({ text: text.slice(at, start) });
    out.push({ text: m[0], label: m[1] });
    at = start + m[0].length;
  }
  if (at < text.length) out.push({ text: text.slice(at) });
  return out;
}

const isKeyLabel = (label: string | undefined) => label !== undefined && /PRIVATE KEY$/.test(label);
const isCertLabel = (label: string | undefined) => label === "CERTIFICATE" || label === "TRUSTED CERTIFICATE";

function keyAlgorithm(pem: string): string | undefined {
  try {
    return createPrivateKey(pem).asymmetricKeyType;
  } catch {
    return undefined; // encrypted, or a type this Node does not know
  }
}

interface Position {
  file: number;
  seg: number;
}
interface KeyGroup {
  key: Position;
  algorithm: string | undefined;
  certs: Position[];
}

/**
 * The new contents of the smtpd_tls_chain_files `files` (their current `contents`; "" for a file
 * that does not exist) with wile's key and fullchain in place of the key group of the same
 * algorithm. Returns one entry per file that changes. Throws DeployError when it cannot tell which
 * group to replace.
 */
export function planChainFiles(
  files: string[],
  contents: string[],
  keyPem: string,
  fullchainPem: string,
): Array<{ path: string; content: string; secret: boolean }> {
  const label = "postfix";
  const key = keyPem.endsWith("\n") ? keyPem : `${keyPem}\n`;
  const segs = contents.map(pemSegments);
  const groups: KeyGroup[] = [];
  segs.forEach((list, file) => {
    list.forEach((s, seg) => {
      if (isKeyLabel(s.label)) {
        groups.push({ key: { file, seg }, algorithm: keyAlgorithm(s.text), certs: [] });
      } else if (isCertLabel(s.label)) {
        const g = groups[groups.length - 1];
        if (!g) {
          throw new DeployError(
            `${label}: ${files[file]} (smtpd_tls_chain_files) has a certificate before any private key`,
            {
              hint: "Postfix wants each key directly followed by its certificate chain. Fix the file (or the order of smtpd_tls_chain_files), or give --postfix-chain-file.",
            },
          );
        }
        g.certs.push({ file, seg });
      }
    });
  });
  if (groups.length === 0) {
    if (files.length === 1) {
      return [{ path: files[0] as string, content: key + fullchainPem, secret: true }];
    }
    throw new DeployError(
      `${label}: smtpd_tls_chain_files lists ${files.length} files and none holds a key yet, so wile cannot tell which to write`,
      { hint: "List one file in smtpd_tls_chain_files, or give --postfix-chain-file PATH." },
    );
  }
  let group: KeyGroup | undefined;
  if (groups.length === 1) group = groups[0];
  else {
    const ours = keyAlgorithm(key);
    const same = groups.filter((g) => g.algorithm !== undefined && g.algorithm === ours);
    if (same.length !== 1) {
      const algs = groups.map((g) => g.algorithm ?? "unreadable").join(", ");
      throw new DeployError(
        `${label}: smtpd_tls_chain_files holds ${groups.length} keys (${algs}) and ${same.length === 0 ? "none" : "more than one"} of them is ${ours ?? "of wile's type"}, so wile cannot tell which to replace`,
        {
          hint: "Give wile its own file: --postfix-chain-file PATH, and list PATH in smtpd_tls_chain_files.",
        },
      );
    }
    group = same[0];
  }
  const g = group as KeyGroup;
  const at = (p: Position, file: number, seg: number) => p.file === file && p.seg === seg;
  const out: Array<{ path: string; content: string; secret: boolean }> = [];
  segs.forEach((list, file) => {
    let changed = false;
    const parts = list.map((s, seg) => {
      if (at(g.key, file, seg)) {
        changed = true;
        return g.certs.length === 0 ? key + fullchainPem : key;
      }
      const first = g.certs[0];
      if (first && at(first, file, seg)) {
        changed = true;
        return fullchainPem;
      }
      if (g.certs.some((p) => at(p, file, seg))) {
        changed = true;
        return "";
      }
      return s.text;
    });
    if (!changed) return;
    const content = parts.join("");
    out.push({
      path: files[file] as string,
      content,
      secret: pemSegments(content).some((s) => isKeyLabel(s.label)),
    });
  });
  return out;
}

async function readIfExists(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw new DeployError(
      `postfix: cannot read ${path} (listed in smtpd_tls_chain_files): ${(err as Error).message}`,
      {
        hint: "wile keeps the other keys in that file, so it must read it: run wile as a user who may, or give --postfix-chain-file.",
      },
    );
  }
}

/** `postconf -xh NAME` (expanded), "" when unset or unknown to this Postfix. */
async function postconf(c: Pick<PostfixConfig, "config">, name: string): Promise<string> {
  const args = [...(c.config !== undefined ? ["-c", c.config] : []), "-xh", name];
  const r = await mail.runTool(POSTCONF, args, "postfix");
  if (r.failure) {
    throw new DeployError(`postfix: ${mail.failedMessage(r)}`, {
      hint:
        c.config !== undefined
          ? `Is ${c.config} a Postfix configuration directory (with main.cf)? Or give --postfix-chain-file.`
          : "postconf must be able to read Postfix's main.cf (--postfix-config DIR for another instance), or give --postfix-chain-file.",
    });
  }
  return r.stdout.trim();
}

/** Works out the files to write, from the explicit options or from postconf. */
export async function postfixPlan(
  c: Pick<PostfixConfig, "config" | "chainFile" | "cert" | "key">,
  ctx: DeployContext,
): Promise<mail.MailPlan> {
  if (c.chainFile !== undefined) {
    return {
      setting: "--postfix-chain-file",
      certPath: c.chainFile,
      outputs: [
        {
          path: c.chainFile,
          what: "chain file (key and certificates)",
          secret: true,
          content: (x) => keyThenFullchain(x.files),
        },
      ],
    };
  }
  if (c.cert !== undefined && c.key !== undefined) {
    return {
      setting: "--postfix-cert",
      certPath: c.cert,
      outputs: mail.certKeyOutputs(c.cert, c.key, "certificate"),
    };
  }
  const chainList = await postconf(c, "smtpd_tls_chain_files");
  if (chainList !== "") {
    const files = chainList
      .split(/[\s,]+/)
      .filter((f) => f !== "")
      .map((f) => mail.configuredPath(f, "smtpd_tls_chain_files", "postfix"));
    const contents = await Promise.all(files.map(readIfExists));
    const planned = planChainFiles(files, contents, ctx.files.privkeyPem, ctx.files.fullchainPem);
    const certFile = planned.find((p) => p.content.includes(ctx.files.fullchainPem.trim()))?.path ?? files[0];
    return {
      setting: "smtpd_tls_chain_files",
      certPath: certFile as string,
      outputs: planned.map((p) => ({
        path: p.path,
        what: "smtpd_tls_chain_files file",
        secret: p.secret,
        content: () => p.content,
      })),
    };
  }
  const cert = await postconf(c, "smtpd_tls_cert_file");
  if (cert === "" || cert === "none") {
    throw new DeployError(
      `postfix: Postfix has no server certificate file (smtpd_tls_chain_files is empty, smtpd_tls_cert_file is ${cert === "" ? "empty" : "none"})`,
      {
        hint: "Set smtpd_tls_chain_files = /etc/postfix/wile-chain.pem in main.cf (wile writes it), or give --postfix-chain-file / --postfix-cert and --postfix-key.",
      },
    );
  }
  const certPath = mail.configuredPath(cert, "smtpd_tls_cert_file", "postfix");
  const keyValue = await postconf(c, "smtpd_tls_key_file");
  const keyPath = keyValue === "" ? certPath : mail.configuredPath(keyValue, "smtpd_tls_key_file", "postfix");
  return {
    setting: "smtpd_tls_cert_file",
    certPath,
    outputs: mail.certKeyOutputs(certPath, keyPath, "certificate"),
  };
}

export const postfixKind = defineTarget({
  kind: "postfix",
  summary:
    "Postfix: key and chain where postconf's smtpd_tls_chain_files (or cert/key files) say, postfix reload, verify SMTP STARTTLS",
  example: "--deploy postfix --postfix-reload 'sudo postfix reload'",
  settings,
  check(c, name) {
    if (c.chainFile !== undefined && c.cert !== undefined) {
      throw new Error(
        `${name("chainFile")} and ${name("cert")}/${name("key")} exclude each other: smtpd_tls_chain_files wants one file with the key first, smtpd_tls_cert_file and smtpd_tls_key_file want two`,
      );
    }
  },
  create: (c) =>
    mail.target({
      kind: "postfix",
      c,
      defaults: POSTFIX_VERIFY_DEFAULTS,
      reloadTool: POSTFIX,
      nonRootHint:
        "postfix reload needs root: give --postfix-reload 'sudo postfix reload' with a sudoers rule for it.",
      unplanned: c.chainFile ?? c.cert ?? "paths from postconf",
      plan: (ctx) => postfixPlan(c, ctx),
    }),
});
