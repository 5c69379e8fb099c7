/**
 * The "nginx" target, and the shared shape of the web-server targets (apache.ts uses it too):
 *
 * - With `--nginx-cert PATH --nginx-key PATH` the fullchain and key are copied there (atomically,
 *   an existing file keeping its owner and mode, a new key 0600), as acme.sh's --install-cert does.
 * - With neither, nothing is copied: nginx is expected to read wile's stable paths
 *   (`ssl_certificate <home>/certs/NAME/fullchain.pem; ssl_certificate_key .../privkey.pem;`),
 *   which always hold a matching pair, and the target only reloads and verifies.
 * - Then the reload command (default `nginx -s reload`; `--nginx-reload` for sudo, systemctl, a
 *   prefix...), then a check over HTTPS, with SNI, that the server now serves the new certificate
 *   (default 127.0.0.1:443; `--nginx-verify HOST[:PORT]`, `--no-nginx-verify` to skip).
 */
import type { OptionSpec, ParsedOptions } from "../cli/options";
import { str } from "../cli/options";
import { UsageError, WileError } from "../util/errors";
import {
  absolutePath,
  checkCommandProgram,
  checkOutputs,
  type OutputFile,
  optionalPath,
  optionalString,
  writeOutputs,
} from "./files";
import { runHook } from "./reload";
import type { Target, TargetKind } from "./target";
import { describeEndpoint, formatEndpoint, parseEndpoint, verifyDeployed, verifySetting } from "./verify";

export interface WebServerConfig {
  kind: string;
  /** Where the fullchain goes; absent (with key) = the service reads wile's stable paths. */
  cert?: string;
  key?: string;
  /** Absent = the default reload command. */
  reloadCmd?: string;
  /** host:port:protocol to check; absent = the default endpoint; false = no check. */
  verify?: string | false;
}

/** What differs between nginx, apache and the like. */
export interface WebServerSpec {
  kind: string;
  /** "nginx", "Apache": for messages and help. */
  label: string;
  defaultReload: string;
  /** Config directives naming the certificate and key files, for hints. */
  certDirective: string;
  keyDirective: string;
  summary: string;
}

const VERIFY_DEFAULTS = { port: 443, protocol: "tls" as const };
export const DEFAULT_WEB_VERIFY = "127.0.0.1:443";

export function webServerOptions(spec: WebServerSpec): OptionSpec[] {
  const k = spec.kind;
  return [
    {
      name: `${k}-cert`,
      type: "string",
      arg: "PATH",
      help: `${k}: copy the fullchain here (with --${k}-key; without both, ${spec.label} reads wile's own paths: ${spec.certDirective} <home>/certs/NAME/fullchain.pem)`,
    },
    {
      name: `${k}-key`,
      type: "string",
      arg: "PATH",
      help: `${k}: copy the private key here (new file: mode 0600)`,
    },
    {
      name: `${k}-reload`,
      type: "string",
      arg: "CMD",
      help: `${k}: reload command (sh -c; default: ${spec.defaultReload})`,
    },
    {
      name: `${k}-verify`,
      type: "string",
      arg: "HOST[:PORT]",
      help: `${k}: after the reload, check that this HTTPS endpoint serves the new certificate (default ${DEFAULT_WEB_VERIFY}; --no-${k}-verify skips it)`,
    },
  ];
}

function fromOptions(spec: WebServerSpec, opts: ParsedOptions): WebServerConfig {
  const k = spec.kind;
  const c: WebServerConfig = { kind: k };
  const cert = str(opts, `${k}-cert`);
  const key = str(opts, `${k}-key`);
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError(`--${k}-cert and --${k}-key go together`, {
      hint: `Give both to copy the certificate and key there, or neither to have ${spec.label} read wile's own files (${spec.certDirective} <home>/certs/NAME/fullchain.pem).`,
    });
  }
  if (cert !== undefined && key !== undefined) {
    c.cert = absolutePath(cert, `${k}-cert`);
    c.key = absolutePath(key, `${k}-key`);
    if (c.cert === c.key) throw new UsageError(`--${k}-cert and --${k}-key name the same file`);
  }
  const reload = str(opts, `${k}-reload`);
  if (reload !== undefined) {
    if (reload.trim() === "") throw new UsageError(`--${k}-reload needs a command`);
    c.reloadCmd = reload;
  }
  const verify = str(opts, `${k}-verify`);
  if (verify !== undefined) c.verify = verifySetting(verify, VERIFY_DEFAULTS);
  return c;
}

function parse(spec: WebServerSpec, raw: Record<string, unknown>, where: string): WebServerConfig {
  const c: WebServerConfig = { kind: spec.kind };
  const cert = optionalPath(raw, "cert", where);
  const key = optionalPath(raw, "key", where);
  if ((cert === undefined) !== (key === undefined)) throw new WileError(`${where}: cert and key go together`);
  if (cert !== undefined) c.cert = cert;
  if (key !== undefined) c.key = key;
  const reload = optionalString(raw, "reloadCmd", where);
  if (reload !== undefined) c.reloadCmd = reload;
  if (raw.verify === false) c.verify = false;
  else if (raw.verify !== undefined) {
    const v = optionalString(raw, "verify", where) as string;
    try {
      c.verify = formatEndpoint(parseEndpoint(v, VERIFY_DEFAULTS));
    } catch (err) {
      throw new WileError(`${where}.verify: ${(err as Error).message}`);
    }
  }
  return c;
}

function create(spec: WebServerSpec, c: WebServerConfig): Target {
  const outputs: OutputFile[] =
    c.cert && c.key
      ? [
          {
            path: c.cert,
            what: "certificate (fullchain)",
            secret: false,
            content: (x) => x.files.fullchainPem,
          },
          { path: c.key, what: "key", secret: true, content: (x) => x.files.privkeyPem },
        ]
      : [];
  const endpoint =
    c.verify === false ? undefined : parseEndpoint(c.verify ?? DEFAULT_WEB_VERIFY, VERIFY_DEFAULTS);
  const reload = c.reloadCmd ?? spec.defaultReload;
  return {
    kind: spec.kind,
    describe: () =>
      `${spec.kind} (${c.cert ?? "wile's own paths"}${endpoint ? `, verify ${describeEndpoint(endpoint)}` : ""})`,
    async check() {
      await checkOutputs(`${spec.kind}:`, outputs, undefined);
      await checkCommandProgram(reload, `${spec.kind}: reload`);
    },
    async deploy(ctx) {
      if (outputs.length > 0) await writeOutputs(ctx, spec.kind, outputs, {});
      await runHook(reload, ctx, `${spec.kind}: reload`);
      if (!endpoint) return;
      const certPath = c.cert ?? ctx.paths.fullchain;
      const keyPath = c.key ?? ctx.paths.privkey;
      await verifyDeployed(
        ctx,
        spec.kind,
        endpoint,
        `does ${spec.certDirective} point at ${certPath} (and ${spec.keyDirective} at ${keyPath}) in the server block for ${ctx.serverName}?`,
      );
    },
  };
}

/** A TargetKind for a web server described by `spec`. */
export function webServerKind(spec: WebServerSpec): TargetKind<WebServerConfig> {
  return {
    kind: spec.kind,
    summary: spec.summary,
    options: webServerOptions(spec),
    fromOptions: (opts) => fromOptions(spec, opts),
    parse: (raw, where) => parse(spec, raw, where),
    create: (c) => create(spec, c),
  };
}

export const nginxKind = webServerKind({
  kind: "nginx",
  label: "nginx",
  defaultReload: "nginx -s reload",
  certDirective: "ssl_certificate",
  keyDirective: "ssl_certificate_key",
  summary: "nginx: fullchain and key to given paths (or nginx reads wile's), nginx -s reload, verify HTTPS",
});
