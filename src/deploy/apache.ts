/**
 * The "apache" target: as nginx (see nginx.ts), with Apache's names. The fullchain goes into one
 * file, which SSLCertificateFile reads since Apache 2.4.8 (SSLCertificateChainFile is obsolete);
 * the reload is `apachectl -k graceful` unless --apache-reload says otherwise (`systemctl reload
 * apache2`, a sudo rule).
 */
import { webServerKind } from "./nginx";

export const apacheKind = webServerKind({
  kind: "apache",
  label: "Apache",
  defaultReload: "apachectl -k graceful",
  certDirective: "SSLCertificateFile",
  keyDirective: "SSLCertificateKeyFile",
  summary:
    "Apache httpd: fullchain and key to given paths (or Apache reads wile's), apachectl -k graceful, verify HTTPS",
});
