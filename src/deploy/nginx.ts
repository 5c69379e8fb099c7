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
import { checkCommandProgram } from "../util/programs";
import { command, path, withDefault } from "../util/settings";
import { checkOutputs, type OutputFile, writeOutputs } from "./outputs";
import { runHook } from "./reload";
import { defineTarget } from "./target";
import { describeEndpoint, verifyDeployed, verifyEndpoint, verifySetting } from "./verify";

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

/** A target kind for a web server described by `spec`. */
export function webServerKind(spec: WebServerSpec) {
  const k = spec.kind;
  return defineTarget({
    kind: k,
    summary: spec.summary,
    example: `--deploy ${k} --${k}-reload 'sudo systemctl reload ${k}'`,
    settings: {
      /** Where the fullchain goes; absent (with key) = the service reads wile's stable paths. */
      cert: path({
        flag: `${k}-cert`,
        arg: "PATH",
        help: `${k}: copy the fullchain here (with --${k}-key; without both, ${spec.label} reads wile's own paths: ${spec.certDirective} <home>/certs/NAME/fullchain.pem)`,
        needs: "key",
      }),
      key: path({
        flag: `${k}-key`,
        arg: "PATH",
        help: `${k}: copy the private key here (new file: mode 0600)`,
        needs: "cert",
      }),
      reloadCmd: withDefault(
        command({
          flag: `${k}-reload`,
          arg: "CMD",
          help: `${k}: reload command (sh -c; default: ${spec.defaultReload})`,
        }),
        spec.defaultReload,
      ),
      verify: withDefault(
        verifySetting({
          flag: `${k}-verify`,
          arg: "HOST[:PORT]",
          help: `${k}: after the reload, check that this HTTPS endpoint serves the new certificate (default ${DEFAULT_WEB_VERIFY}; --no-${k}-verify skips it)`,
          defaults: VERIFY_DEFAULTS,
        }),
        DEFAULT_WEB_VERIFY,
      ),
    },
    check(c, name) {
      if (c.cert !== undefined && c.cert === c.key)
        throw new Error(`${name("cert")} and ${name("key")} name the same file`);
    },
    create(c) {
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
      const endpoint = verifyEndpoint(c.verify, VERIFY_DEFAULTS);
      return {
        kind: k,
        describe: () =>
          `${k} (${c.cert ?? "wile's own paths"}${endpoint ? `, verify ${describeEndpoint(endpoint)}` : ""})`,
        async check() {
          await checkOutputs(`${k}:`, outputs, undefined);
          await checkCommandProgram(c.reloadCmd, `${k}: reload`);
        },
        async deploy(ctx) {
          if (outputs.length > 0) await writeOutputs(ctx, k, outputs, {});
          await runHook(c.reloadCmd, ctx, `${k}: reload`);
          if (!endpoint) return;
          const certPath = c.cert ?? ctx.paths.fullchain;
          const keyPath = c.key ?? ctx.paths.privkey;
          await verifyDeployed(
            ctx,
            k,
            endpoint,
            `does ${spec.certDirective} point at ${certPath} (and ${spec.keyDirective} at ${keyPath}) in the server block for ${ctx.serverName}?`,
          );
        },
      };
    },
  });
}

export const nginxKind = webServerKind({
  kind: "nginx",
  label: "nginx",
  defaultReload: "nginx -s reload",
  certDirective: "ssl_certificate",
  keyDirective: "ssl_certificate_key",
  summary: "nginx: fullchain and key to given paths (or nginx reads wile's), nginx -s reload, verify HTTPS",
});
