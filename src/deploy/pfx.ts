/**
 * PKCS#12 for the files target (--pfx-file) and the exchange target: the settings they share
 * (`--pfx-password`, `--pfx-legacy`) and the one way a PFX is built from the deploy context.
 */
import { splitPemChain } from "../crypto/pem";
import { buildPfx } from "../crypto/pkcs12";
import { flag, text } from "../util/settings";
import { type DeployContext, DeployError } from "./target";

export const pfxPassword = text({
  flag: "pfx-password",
  arg: "PW",
  secret: true,
  help: "password of the PKCS#12 file (default: a new random one each time: files writes it to PATH.pass, exchange sends it only on ssh's stdin; a given one is stored in renewal.json)",
  check: (v) => (/[\r\n\0]/.test(v) ? "must not contain line breaks or NUL" : undefined),
});

export const pfxLegacy = flag({
  flag: "pfx-legacy",
  help: "PKCS#12 with 3DES and a SHA-1 MAC, for Windows Server 2016 and older (default: AES-256 and SHA-256, Windows Server 2019 and newer)",
});

/** Key, leaf and chain of `ctx` as a PKCS#12 file; DeployError when they do not make one. */
export function pfxFor(
  ctx: DeployContext,
  o: { password: string; legacy: boolean; friendlyName: string; what: string },
): Buffer {
  try {
    return buildPfx({
      keyPem: ctx.files.privkeyPem,
      certPem: ctx.files.certPem,
      chainPems: splitPemChain(ctx.files.chainPem),
      password: o.password,
      friendlyName: o.friendlyName,
      ...(o.legacy ? { legacy: true } : {}),
    });
  } catch (err) {
    throw new DeployError(`cannot build ${o.what}: ${(err as Error).message}`);
  }
}
