/**
 * The "files" target (acme.sh's --install-cert): copies the certificate, key, chain, fullchain, a
 * combined key+fullchain PEM and optionally a PKCS#12 file to paths the operator names, each written
 * atomically in its own directory, then runs --reload-cmd and, with --verify, checks what the
 * service serves.
 */
import { randomPassword } from "../crypto/pkcs12";
import { checkCommandProgram } from "../util/programs";
import { command, path } from "../util/settings";
import { checkOutputs, modeSetting, type OutputFile, ownerSetting, writeOutputs } from "./outputs";
import { keyThenFullchain } from "./pem-bundle";
import { pfxFor, pfxLegacy, pfxPassword } from "./pfx";
import { runHook } from "./reload";
import { type DeployContext, defineTarget } from "./target";
import { describeEndpoint, verifyDeployed, verifyEndpoint, verifySetting } from "./verify";

const VERIFY_DEFAULTS = { port: 443, protocol: "tls" as const };

/** The path settings, in the order their files are written (the key after the certificates). */
const PATHS = ["certFile", "caFile", "fullchainFile", "keyFile", "combinedFile", "pfxFile"] as const;

export const filesKind = defineTarget({
  kind: "files",
  summary:
    "copy cert, key, chain, fullchain, key+fullchain PEM or PKCS#12 to given paths; --reload-cmd; --verify",
  example: "--deploy files --key-file /etc/ssl/private/site.key --fullchain-file /etc/ssl/certs/site.pem",
  settings: {
    certFile: path({ flag: "cert-file", arg: "PATH", help: "files: the certificate (leaf only)" }),
    keyFile: path({ flag: "key-file", arg: "PATH", help: "files: the private key" }),
    /** The chain (issuer certificates), as acme.sh's --ca-file. */
    caFile: path({ flag: "ca-file", arg: "PATH", help: "files: the chain (issuer certificates)" }),
    fullchainFile: path({ flag: "fullchain-file", arg: "PATH", help: "files: certificate and chain" }),
    /** Key followed by the fullchain. */
    combinedFile: path({
      flag: "combined-file",
      arg: "PATH",
      help: "files: key followed by certificate and chain, one PEM (HAProxy and others)",
    }),
    /**
     * A PKCS#12 file (key, leaf, chain) for IIS and other Windows services, with a fresh random
     * password written next to it as <pfxFile>.pass (secret mode, same owner), unless pfxPassword.
     */
    pfxFile: path({
      flag: "pfx-file",
      arg: "PATH",
      help: "files: PKCS#12 with key, certificate and chain (IIS, Windows services; AES-256, SHA-256 MAC); without --pfx-password a random password goes to PATH.pass",
    }),
    pfxPassword: { ...pfxPassword, needs: "pfxFile" },
    pfxLegacy: { ...pfxLegacy, needs: "pfxFile" },
    owner: ownerSetting({
      flag: "owner",
      help: "files: chown the files written (needs root, or membership for a group)",
    }),
    /** Octal, for the key files: "0640". */
    mode: modeSetting({
      flag: "mode",
      help: "files: mode of the key files (default 0600, 0640 with a group; an existing file keeps its mode)",
    }),
    reloadCmd: command({
      flag: "reload-cmd",
      arg: "CMD",
      help: "files: run after copying (sh -c, 60 s timeout)",
    }),
    verify: verifySetting({
      flag: "verify",
      help: "files: afterwards, check that this endpoint serves the new certificate (port 443; PROTO tls, smtp, imap, pop3)",
      defaults: VERIFY_DEFAULTS,
    }),
  },
  check(c, name) {
    const paths = PATHS.map((k) => c[k]).filter((p): p is string => p !== undefined);
    if (paths.length === 0) {
      throw new Error(`needs at least one path: ${PATHS.map((k) => name(k)).join(", ")}`);
    }
    const twice = paths.find((p, i) => paths.indexOf(p) !== i);
    if (twice) throw new Error(`${twice} is given for two different files`);
  },
  create(c) {
    const outputs = (password?: string): OutputFile[] => {
      const out: OutputFile[] = [];
      const add = (
        path: string | undefined,
        what: string,
        secret: boolean,
        content: OutputFile["content"],
      ) => {
        if (path !== undefined) out.push({ path, what, secret, content });
      };
      add(c.certFile, "certificate file", false, (x) => x.files.certPem);
      add(c.caFile, "chain file", false, (x) => x.files.chainPem);
      add(c.fullchainFile, "fullchain file", false, (x) => x.files.fullchainPem);
      add(c.keyFile, "key file", true, (x) => x.files.privkeyPem);
      add(c.combinedFile, "combined file", true, (x) => keyThenFullchain(x.files));
      if (c.pfxFile !== undefined) {
        // Built once per deploy (content is called once per file); the password file goes with it.
        let pfx: Buffer | undefined;
        const build = (x: DeployContext) =>
          (pfx ??= pfxFor(x, {
            password: c.pfxPassword ?? (password as string),
            legacy: c.pfxLegacy,
            friendlyName: `${x.name} ${x.notAfter.toISOString().slice(0, 10)}`,
            what: `the PKCS#12 file ${c.pfxFile}`,
          }));
        add(c.pfxFile, "PKCS#12 file", true, build);
        if (c.pfxPassword === undefined)
          add(`${c.pfxFile}.pass`, "PKCS#12 password file", true, () => `${password}\n`);
      }
      return out;
    };
    const endpoint = verifyEndpoint(c.verify, VERIFY_DEFAULTS);
    const paths = outputs().map((o) => o.path);
    return {
      kind: "files",
      describe: () => {
        const shown =
          paths.length > 2
            ? `${paths.slice(0, 2).join(", ")} and ${paths.length - 2} more`
            : paths.join(", ");
        return `files (${shown}${endpoint ? `, verify ${describeEndpoint(endpoint)}` : ""})`;
      },
      async check() {
        await checkOutputs("files:", outputs(), c.owner);
        if (c.reloadCmd) await checkCommandProgram(c.reloadCmd, "files: --reload-cmd");
      },
      async deploy(ctx) {
        await writeOutputs(ctx, "files", outputs(randomPassword()), c);
        if (c.reloadCmd) await runHook(c.reloadCmd, ctx, "files: reload");
        if (endpoint) {
          await verifyDeployed(
            ctx,
            "the service",
            endpoint,
            `does it read ${paths.join(" or ")}${c.reloadCmd ? "" : ", and does it need a --reload-cmd"}?`,
          );
        }
      },
    };
  },
});
