/**
 * The other ACME clients, driven the way their documentation shows, all pointed at the same Pebble:
 * its directory URL, its listener CA trusted (certbot: REQUESTS_CA_BUNDLE; lego: LEGO_CA_CERTIFICATES;
 * dehydrated: curl's CURL_CA_BUNDLE; uacme, whose libcurl-gnutls reads no variable and has no option:
 * the system bundle path, bind-mounted in the benchmark's private mount namespace, see full.ts), the
 * http-01 files written into env.webroot (nginx serves it, Pebble's VA fetches from it).
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, mkdirSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { TestEnv } from "../test/helpers/testenv";
import type { Cmd } from "./lib";

export interface Peer {
  id: string;
  /** Debian packages that make up the client itself (sizes are summed over these and their deps). */
  packages: string[];
  bin: string;
  version: () => string;
  versionCmd: () => Cmd;
  /** Exit codes of versionCmd that mean it worked (uacme -V exits 2). */
  versionOk?: number[];
  /** Account registration (untimed); may be empty when the first issuance registers. */
  setup: () => Cmd[];
  issue: (name: string) => Cmd;
  certFile: (name: string) => string;
  /** Renew-all as cron runs it, over the certificates issued so far; every command must exit in okCodes. */
  cron: (names: string[]) => { cmds: Cmd[]; okCodes: number[]; how: string };
  /** Bulk issuance of names, the documented way: commands run one after the other. */
  bulk: (names: string[]) => { cmds: Cmd[]; how: string; certFile: (name: string) => string };
}

export function which(name: string): string | undefined {
  for (const dir of [
    ...(process.env.PATH ?? "").split(delimiter),
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
  ]) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {}
  }
  return undefined;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n").find((l) => l.trim().length > 0) ?? "?";
}

export function debVersion(pkg: string): string {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format, not a template
  const r = spawnSync("dpkg-query", ["-W", "-f", "${Version}", pkg], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "?";
}

const baseEnv = (home: string): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
  HOME: home,
  LANG: "C.UTF-8",
});

export function certbot(env: TestEnv, dir: string): Peer {
  const bin = "certbot";
  const e = { ...baseEnv(dir), REQUESTS_CA_BUNDLE: env.caBundle };
  const common = [
    "--config-dir",
    join(dir, "etc"),
    "--work-dir",
    join(dir, "work"),
    "--logs-dir",
    join(dir, "log"),
  ];
  const issue = (name: string): Cmd => ({
    cmd: bin,
    args: [
      "certonly",
      "--non-interactive",
      "--agree-tos",
      ...common,
      "--server",
      env.directoryUrl,
      "--webroot",
      "-w",
      env.webroot,
      "-d",
      name,
      "--key-type",
      "ecdsa",
      "--elliptic-curve",
      "secp256r1",
    ],
    env: e,
  });
  const certFile = (name: string) => join(dir, "etc", "live", name, "cert.pem");
  return {
    id: "certbot",
    packages: ["certbot"],
    bin,
    version: () => firstLine(bin, ["--version"]),
    versionCmd: () => ({ cmd: bin, args: ["--version"], env: e }),
    setup: () => [
      {
        cmd: bin,
        args: [
          "register",
          "--non-interactive",
          "--agree-tos",
          "--register-unsafely-without-email",
          ...common,
          "--server",
          env.directoryUrl,
        ],
        env: e,
      },
    ],
    issue,
    certFile,
    cron: () => ({
      // What Debian's certbot.timer / cron.d/certbot run.
      cmds: [{ cmd: bin, args: ["-q", "renew", "--no-random-sleep-on-renew", ...common], env: e }],
      okCodes: [0],
      how: "certbot -q renew --no-random-sleep-on-renew (Debian's certbot.timer and /etc/cron.d/certbot)",
    }),
    bulk: (names) => ({
      cmds: names.map(issue),
      how: "one `certbot certonly --webroot -d NAME` per certificate, in a loop",
      certFile,
    }),
  };
}

export function lego(env: TestEnv, dir: string): Peer {
  const bin = "lego";
  const e = { ...baseEnv(dir), LEGO_CA_CERTIFICATES: env.caBundle };
  const global = (name: string) => [
    "--accept-tos",
    "--email",
    "bench@example.org",
    "--server",
    env.directoryUrl,
    "--path",
    dir,
    "--key-type",
    "ec256",
    "--http",
    "--http.webroot",
    env.webroot,
    "-d",
    name,
  ];
  const issue = (name: string): Cmd => ({ cmd: bin, args: [...global(name), "run"], env: e });
  const certFile = (name: string) => join(dir, "certificates", `${name}.crt`);
  return {
    id: "lego",
    packages: ["lego"],
    bin,
    version: () => `${firstLine(bin, ["--version"])} (Debian ${debVersion("lego")})`,
    versionCmd: () => ({ cmd: bin, args: ["--version"], env: e }),
    // lego has no separate register command: the untimed warm-up issuance registers the account.
    setup: () => [],
    issue,
    certFile,
    cron: (names) => ({
      cmds: names.map((n) => ({ cmd: bin, args: [...global(n), "renew", "--days", "30"], env: e })),
      okCodes: [0],
      how: "one `lego ... -d NAME renew --days 30` per certificate (lego's docs: a cron job per certificate)",
    }),
    bulk: (names) => ({
      cmds: names.map(issue),
      how: "one `lego ... -d NAME run` per certificate, in a loop",
      certFile,
    }),
  };
}

export function dehydrated(env: TestEnv, dir: string): Peer {
  const bin = "dehydrated";
  const e = { ...baseEnv(dir), CURL_CA_BUNDLE: env.caBundle };
  const wellKnown = join(env.webroot, ".well-known", "acme-challenge");
  mkdirSync(wellKnown, { recursive: true, mode: 0o755 });
  const config = (file: string, domainsTxt: string) => {
    writeFileSync(
      file,
      [
        `CA="${env.directoryUrl}"`,
        `BASEDIR="${dir}"`,
        `WELLKNOWN="${wellKnown}"`,
        `DOMAINS_TXT="${domainsTxt}"`,
        'CHALLENGETYPE="http-01"',
        'KEY_ALGO="prime256v1"',
        "RENEW_DAYS=30",
        "",
      ].join("\n"),
    );
    return file;
  };
  const cfg = config(join(dir, "config"), join(dir, "domains.txt"));
  const bulkCfg = config(join(dir, "config-bulk"), join(dir, "bulk-domains.txt"));
  const certFile = (name: string) => join(dir, "certs", name, "cert.pem");
  return {
    id: "dehydrated",
    packages: ["dehydrated"],
    bin,
    version: () => `dehydrated ${debVersion("dehydrated")} (Debian package)`,
    versionCmd: () => ({ cmd: bin, args: ["-f", cfg, "--version"], env: e }),
    setup: () => [{ cmd: bin, args: ["-f", cfg, "--register", "--accept-terms"], env: e }],
    issue: (name) => ({ cmd: bin, args: ["-f", cfg, "-c", "-d", name], env: e }),
    certFile,
    cron: (names) => {
      writeFileSync(join(dir, "domains.txt"), `${names.join("\n")}\n`);
      return {
        cmds: [{ cmd: bin, args: ["-f", cfg, "-c"], env: e }],
        okCodes: [0],
        how: "dehydrated -c over domains.txt with the certificates (its cron line)",
      };
    },
    bulk: (names) => {
      writeFileSync(join(dir, "bulk-domains.txt"), `${names.join("\n")}\n`);
      return {
        cmds: [{ cmd: bin, args: ["-f", bulkCfg, "-c"], env: e }],
        how: `one \`dehydrated -c\` over a domains.txt of the ${names.length} names (it signs them one after the other)`,
        certFile,
      };
    },
  };
}

export function uacme(env: TestEnv, dir: string): Peer {
  const bin = "uacme";
  const hook = "/usr/share/uacme/uacme.sh";
  const challengePath = join(env.webroot, ".well-known", "acme-challenge");
  mkdirSync(challengePath, { recursive: true, mode: 0o755 });
  const e = { ...baseEnv(dir), UACME_CHALLENGE_PATH: challengePath };
  const common = ["-c", dir, "-a", env.directoryUrl];
  const issue = (name: string): Cmd => ({
    cmd: bin,
    args: [...common, "-t", "EC", "-b", "256", "-h", hook, "issue", name],
    env: e,
  });
  const certFile = (name: string) => join(dir, name, "cert.pem");
  return {
    id: "uacme",
    packages: ["uacme"],
    bin,
    version: () => `${firstLine(bin, ["-V"]).replace(/^uacme: /, "uacme ")} (Debian ${debVersion("uacme")})`,
    versionCmd: () => ({ cmd: bin, args: ["-V"], env: e }),
    versionOk: [2],
    setup: () => [{ cmd: bin, args: [...common, "-y", "new"], env: e }],
    issue,
    certFile,
    cron: (names) => ({
      // uacme's man page: exit 0 issued, 1 not reissued (not due), 2 error.
      cmds: names.map(issue),
      okCodes: [1],
      how: "one `uacme ... issue NAME` per certificate (its man page's cron example); exit 1 = not due",
    }),
    bulk: (names) => ({
      cmds: names.map(issue),
      how: "one `uacme ... issue NAME` per certificate, in a loop",
      certFile,
    }),
  };
}

export const PEERS = [
  { id: "certbot", make: certbot },
  { id: "lego", make: lego },
  { id: "dehydrated", make: dehydrated },
  { id: "uacme", make: uacme },
] as const;
