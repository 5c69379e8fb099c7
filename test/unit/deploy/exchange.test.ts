import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  type ExchangeConfig,
  exchangeKind,
  exchangeScript,
  friendlyNameFor,
  hostCommands,
  readHostResult,
  remotePfxPath,
  thumbprintOf,
} from "../../../src/deploy/exchange";
import { decodeClixml, parseScriptOutput, psQuote } from "../../../src/deploy/powershell";
import { targetKind } from "../../../src/deploy/registry";
import { DeployError } from "../../../src/deploy/target";
import {
  configFromArgv,
  entryError,
  storedFromEntry,
  targetFromArgv,
  usageError,
  valuesFromEntry,
} from "../../helpers/deploy-kinds";
import { deployRoundTrip } from "../../helpers/renewal";

const THUMB = "0123456789ABCDEF0123456789ABCDEF01234567";

const fromArgv = (argv: string[]) => configFromArgv(exchangeKind, argv);

describe("psQuote", () => {
  test("single-quoted; ' and its typographic forms doubled; $ ` \" left alone", () => {
    assert.equal(psQuote("plain"), "'plain'");
    assert.equal(psQuote(""), "''");
    assert.equal(psQuote("it's"), "'it''s'");
    assert.equal(
      psQuote("a\u2018b\u2019c\u201ad\u201be"),
      "'a\u2018\u2018b\u2019\u2019c\u201a\u201ad\u201b\u201be'",
    );
    assert.equal(psQuote('$(rm -r C:\\) `n "x" $env:PATH'), "'$(rm -r C:\\) `n \"x\" $env:PATH'");
  });
  test("line breaks and NUL are refused", () => {
    assert.throws(() => psQuote("a\nb"), /line break/);
    assert.throws(() => psQuote("a\rb"), /line break/);
    assert.throws(() => psQuote("a\0b"), /NUL/);
  });
});

describe("exchangeScript", () => {
  test("the exact text for IIS,SMTP without removal", () => {
    const text = exchangeScript({
      pfxPath: "C:/ProgramData/wile/wile-mail.example.com-01234567.pfx",
      password: "pw-123_abc",
      thumbprint: THUMB,
      services: ["IIS", "SMTP"],
      oldFriendlyNamePrefix: "wile mail.example.com ",
      removeOld: false,
    });
    assert.equal(
      text,
      [
        "$ErrorActionPreference = 'Stop'",
        "$ProgressPreference = 'SilentlyContinue'",
        "try {",
        "  $path = 'C:/ProgramData/wile/wile-mail.example.com-01234567.pfx'",
        `  $thumbprint = '${THUMB}'`,
        "  $services = 'IIS,SMTP'",
        "  $oldPrefix = 'wile mail.example.com '",
        "  $removeOld = $false",
        "  $password = ConvertTo-SecureString -String 'pw-123_abc' -AsPlainText -Force",
        "  $imported = $false",
        "  try {",
        "    if (-not (Get-Command Import-ExchangeCertificate -ErrorAction SilentlyContinue)) {",
        "      Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn",
        "    }",
        "    if (-not (Get-ExchangeCertificate -Thumbprint $thumbprint -ErrorAction SilentlyContinue)) {",
        "      $null = Import-ExchangeCertificate -FileData ([System.IO.File]::ReadAllBytes($path)) -Password $password -PrivateKeyExportable $false",
        "      $imported = $true",
        "    }",
        "  } finally {",
        "    Remove-Item -LiteralPath $path -Force -ErrorAction SilentlyContinue",
        "  }",
        "  $cert = Get-ExchangeCertificate -Thumbprint $thumbprint",
        "  $null = Enable-ExchangeCertificate -Thumbprint $thumbprint -Services $services -Force",
        "  $removed = @()",
        "  $notRemoved = @()",
        "  if ($removeOld) {",
        "    foreach ($old in @(Get-ExchangeCertificate | Where-Object { $_.Thumbprint -ne $thumbprint -and $_.FriendlyName -and $_.FriendlyName.StartsWith($oldPrefix) })) {",
        "      try {",
        "        Remove-ExchangeCertificate -Thumbprint $old.Thumbprint -Confirm:$false",
        "        $removed += [string]$old.Thumbprint",
        "      } catch {",
        "        $notRemoved += [ordered]@{ thumbprint = [string]$old.Thumbprint; error = [string]$_.Exception.Message }",
        "      }",
        "    }",
        "  }",
        "  $result = [ordered]@{ thumbprint = [string]$cert.Thumbprint; imported = $imported; services = [string]$services; removed = $removed; notRemoved = $notRemoved }",
        "  Write-Output ('WILE-RESULT ' + (ConvertTo-Json -InputObject $result -Compress -Depth 4))",
        "} catch {",
        "  Write-Output ('WILE-ERROR ' + ([string]$_.Exception.Message -replace '\\s+', ' '))",
        "  exit 1",
        "}",
        "",
        "",
      ].join("\n"),
    );
  });

  test("removal on, all four services", () => {
    const text = exchangeScript({
      pfxPath: "D:/x.pfx",
      password: "p",
      thumbprint: THUMB,
      services: ["IIS", "SMTP", "IMAP", "POP"],
      oldFriendlyNamePrefix: "wile n ",
      removeOld: true,
    });
    assert.match(text, /^ {2}\$services = 'IIS,SMTP,IMAP,POP'$/m);
    assert.match(text, /^ {2}\$removeOld = \$true$/m);
  });

  test("hostile values stay inside their single-quoted strings", () => {
    const text = exchangeScript({
      pfxPath: "C:/Temp/it's $(evil) `whoami`/x.pfx",
      password: "a'b$c`d\u2019e",
      thumbprint: THUMB,
      services: ["IIS"],
      oldFriendlyNamePrefix: "wile o'brien$x `y` ",
      removeOld: true,
    });
    assert.match(text, /^ {2}\$path = 'C:\/Temp\/it''s \$\(evil\) `whoami`\/x\.pfx'$/m);
    assert.match(
      text,
      /^ {2}\$password = ConvertTo-SecureString -String 'a''b\$c`d\u2019\u2019e' -AsPlainText -Force$/m,
    );
    assert.match(text, /^ {2}\$oldPrefix = 'wile o''brien\$x `y` '$/m);
    // Each inserted line has balanced quotes: an even number of quote characters.
    for (const line of text.split("\n").filter((l) => /^ {2}\$(path|password|oldPrefix) =/.test(l))) {
      assert.equal((line.match(/['\u2018\u2019\u201a\u201b]/g) ?? []).length % 2, 0, line);
    }
  });

  test("a password with a line break cannot reach the script", () => {
    assert.throws(
      () =>
        exchangeScript({
          pfxPath: "C:/x.pfx",
          password: "a\nRemove-Item C:/ -Recurse",
          thumbprint: THUMB,
          services: ["IIS"],
          oldFriendlyNamePrefix: "wile x ",
          removeOld: false,
        }),
      /line break/,
    );
  });
});

describe("parseScriptOutput", () => {
  test("a WILE-RESULT line among other output", () => {
    const out = parseScriptOutput(
      `WARNING: something\r\nWILE-RESULT {"thumbprint":"${THUMB}","removed":[]}\r\n`,
    );
    assert.deepEqual(out, { kind: "result", value: { thumbprint: THUMB, removed: [] } });
  });
  test("a WILE-ERROR line", () => {
    assert.deepEqual(parseScriptOutput("WILE-ERROR Import failed: The password is incorrect.\n"), {
      kind: "error",
      message: "Import failed: The password is incorrect.",
    });
  });
  test("the last marker wins", () => {
    const out = parseScriptOutput(`WILE-RESULT {"thumbprint":"A"}\nWILE-ERROR late failure\n`);
    assert.equal(out.kind, "error");
  });
  test("garbage, broken JSON or a non-object are no result; the output tail is kept", () => {
    assert.deepEqual(parseScriptOutput("hello\nworld\n", "bash: powershell: command not found\n"), {
      kind: "none",
      output: "hello | world | bash: powershell: command not found",
    });
    assert.equal(parseScriptOutput("WILE-RESULT {not json").kind, "none");
    assert.equal(parseScriptOutput("WILE-RESULT [1,2]").kind, "none");
    assert.equal(parseScriptOutput("").kind, "none");
    assert.equal(parseScriptOutput("xWILE-RESULT {}").kind, "none");
  });
  test("CLIXML errors on stderr are decoded", () => {
    const clixml =
      '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">The term &apos;Get-Foo&apos; is not recognized_x000D__x000A_</S><S S="Error">at line 1_x000D__x000A_</S></Objs>';
    assert.equal(decodeClixml(clixml), "The term 'Get-Foo' is not recognized\r\nat line 1\r\n");
    assert.equal(decodeClixml("plain text"), "plain text");
    const out = parseScriptOutput("", clixml);
    assert.equal(out.kind, "none");
    assert.match((out as { output: string }).output, /The term 'Get-Foo' is not recognized \| at line 1/);
  });
});

describe("readHostResult", () => {
  const ok = (stdout: string, code = 0) => ({ code, stdout, stderr: "" });
  test("the matching thumbprint (any case), removed and not removed certificates", () => {
    const r = readHostResult(
      "h",
      ok(
        `WILE-RESULT {"thumbprint":"${THUMB.toLowerCase()}","imported":true,"removed":"AAAA","notRemoved":{"thumbprint":"BBBB","error":"in use"}}`,
      ),
      THUMB,
      "exit 0",
    );
    assert.deepEqual(r, {
      thumbprint: THUMB,
      imported: true,
      removed: ["AAAA"],
      notRemoved: [{ thumbprint: "BBBB", error: "in use" }],
    });
  });
  test("WILE-ERROR becomes a DeployError naming the host with the remote message", () => {
    assert.throws(
      () => readHostResult("admin@ex1", ok("WILE-ERROR Import failed: bad password", 1), THUMB, "exit 1"),
      (e: unknown) => e instanceof DeployError && e.message === "admin@ex1: Import failed: bad password",
    );
  });
  test("another thumbprint, no result line, or a failed exit after a result are failures", () => {
    assert.throws(
      () => readHostResult("h", ok(`WILE-RESULT {"thumbprint":"${"F".repeat(40)}"}`), THUMB, "exit 0"),
      /h: Exchange reports certificate F{40}, but the new certificate's thumbprint is 0123/,
    );
    assert.throws(
      () =>
        readHostResult(
          "h",
          { code: 127, stdout: "", stderr: "sh: powershell: not found" },
          THUMB,
          "exit 127",
        ),
      /h: the PowerShell script gave no result line \(exit 127\): sh: powershell: not found/,
    );
    assert.throws(
      () => readHostResult("h", ok(`WILE-RESULT {"thumbprint":"${THUMB}"}`, 3), THUMB, "exit 3"),
      /ended with exit 3 after reporting success/,
    );
  });
});

describe("exchange settings", () => {
  test("registered as a target kind", () => {
    assert.equal(targetKind("exchange"), exchangeKind);
  });

  test("defaults: only what was given is stored; the values have the defaults", () => {
    const c = fromArgv(["--exchange-host", "administrator@ex1.example.com"]);
    assert.deepEqual(c, { kind: "exchange", hosts: ["administrator@ex1.example.com"] });
    assert.deepEqual(valuesFromEntry(exchangeKind, c), {
      hosts: ["administrator@ex1.example.com"],
      sshOptions: [],
      services: ["IIS", "SMTP"],
      removeOld: false,
      dir: "C:/ProgramData/wile",
      powershell: "powershell",
      pfxLegacy: false,
    });
    assert.equal(
      targetFromArgv(exchangeKind, ["--exchange-host", "a@ex1", "--exchange-host", "ex2"]).describe(),
      "exchange (a@ex1, ex2: IIS,SMTP)",
    );
  });

  test("every option, stored and read back from renewal.json unchanged", () => {
    const cfg = fromArgv(
      [
        ["--exchange-host", "admin@ex1"],
        ["--exchange-host", "CORP\\admin@ex2.example.com"],
        ["--exchange-port", "2222"],
        ["--exchange-identity", "/etc/wile/id_ed25519"],
        ["--exchange-option", "UserKnownHostsFile=/etc/wile/known_hosts"],
        ["--exchange-option", "ConnectTimeout=5"],
        ["--exchange-services", "iis, smtp,IMAP,pop,smtp"],
        ["--exchange-remove-old"],
        ["--exchange-dir", "D:\\Certs\\wile\\"],
        ["--exchange-powershell", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"],
        ["--pfx-password", "it's $secret"],
        ["--pfx-legacy"],
      ].flat(),
    );
    const values = {
      hosts: ["admin@ex1", "CORP\\admin@ex2.example.com"],
      port: 2222,
      identity: "/etc/wile/id_ed25519",
      sshOptions: ["UserKnownHostsFile=/etc/wile/known_hosts", "ConnectTimeout=5"],
      services: ["IIS", "SMTP", "IMAP", "POP"],
      removeOld: true,
      dir: "D:/Certs/wile",
      powershell: "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
      pfxPassword: "it's $secret",
      pfxLegacy: true,
    };
    assert.deepEqual(cfg, { kind: "exchange", ...values });
    assert.deepEqual(valuesFromEntry(exchangeKind, JSON.parse(JSON.stringify(cfg))), values);
    assert.deepEqual(storedFromEntry(exchangeKind, JSON.parse(JSON.stringify(cfg))), cfg);
    assert.deepEqual(deployRoundTrip(exchangeKind, [cfg]), [cfg]);
  });

  test("bad input is a UsageError naming the option, before anything is contacted", () => {
    const bad: Array<[string[], RegExp]> = [
      [[], /^--deploy exchange needs --exchange-host USER@HOST$/],
      [["--exchange-host=-oProxyCommand=x"], /^--exchange-host: "-oProxyCommand=x" must not start with -/],
      [["--exchange-host", "a@b;rm"], /^--exchange-host: "a@b;rm" has a bad host "b;rm"/],
      [["--exchange-host", "a b@h"], /^--exchange-host: "a b@h" has a bad user name "a b"/],
      [["--exchange-host", "@host"], /^--exchange-host: "@host" has an empty user name$/],
      [
        ["--exchange-host", "h", "--exchange-host", "h"],
        /^--deploy exchange: --exchange-host h is given twice$/,
      ],
      [
        ["--exchange-host", "h", "--exchange-port", "0"],
        /^--exchange-port "0": must be a port number from 1 to 65535$/,
      ],
      [
        ["--exchange-host", "h", "--exchange-port", "22x"],
        /^--exchange-port "22x": must be a port number from 1 to 65535$/,
      ],
      [
        ["--exchange-host", "h", "--exchange-services", "IIS,WWW"],
        /^--exchange-services "IIS,WWW": must be Exchange service names: "WWW" is not one of IIS, /,
      ],
      [
        ["--exchange-host", "h", "--exchange-dir", "relative\\dir"],
        /^--exchange-dir "relative\\\\dir": must be an absolute path such as C:\\ProgramData\\wile$/,
      ],
      [
        ["--exchange-host", "h", "--exchange-powershell", "C:\\Program Files\\pwsh.exe"],
        /^--exchange-powershell "C:\\\\Program Files\\\\pwsh\.exe": must be a program name or path without spaces/,
      ],
      [
        ["--exchange-host", "h", "--exchange-option=-F/etc/x"],
        /^--exchange-option: "-F\/etc\/x" is not an ssh option NAME=VALUE/,
      ],
      [
        ["--exchange-host", "h", "--exchange-identity", "/k\0x"],
        /^--exchange-identity "\/k x": must not contain a NUL byte$/,
      ],
    ];
    for (const [argv, re] of bad) assert.throws(() => fromArgv(argv), usageError(re), argv.join(" "));
  });

  test("a broken renewal.json entry names the field", () => {
    const file = "certs/x/renewal.json";
    const read = (raw: Record<string, unknown>) => () => valuesFromEntry(exchangeKind, raw, file);
    assert.throws(
      read({ hosts: [] }),
      entryError(file, "deploy[0]", /^\(exchange\) is inconsistent: needs at least one "hosts" USER@HOST\.$/),
    );
    assert.throws(read({}), entryError(file, "deploy[0].hosts", /^is missing\.$/));
    assert.throws(
      read({ hosts: ["h"], port: "22x" }),
      entryError(file, "deploy[0].port", /^must be a port number from 1 to 65535\.$/),
    );
    assert.throws(
      read({ hosts: ["h"], port: 0 }),
      entryError(file, "deploy[0].port", /^must be a port number from 1 to 65535\.$/),
    );
    assert.throws(
      read({ hosts: ["h"], services: ["Web"] }),
      entryError(file, "deploy[0].services", /^must be Exchange service names: "Web" is not one of /),
    );
    assert.throws(
      read({ hosts: ["h"], services: [] }),
      entryError(file, "deploy[0].services", /^must be a list of Exchange service names\.$/),
    );
    assert.throws(
      read({ hosts: ["h"], removeOld: "yes" }),
      entryError(file, "deploy[0].removeOld", /^must be true or false\.$/),
    );
    assert.throws(
      read({ hosts: ["h"], sshOptions: ["-oProxyCommand=x"] }),
      entryError(file, "deploy[0].sshOptions", /^"-oProxyCommand=x" is not an ssh option NAME=VALUE/),
    );
    assert.throws(
      read({ hosts: ["h"], dir: "relative" }),
      entryError(file, "deploy[0].dir", /^must be an absolute path such as /),
    );
  });

  test("a relative --exchange-identity is stored absolute, and renewal.json wants it absolute (bug 2)", () => {
    // Renewals run from cron in another directory: a relative key path would not be found there.
    const cfg = fromArgv(["--exchange-host", "h", "--exchange-identity", "keys/id_ed25519"]);
    assert.equal(cfg.identity, join(process.cwd(), "keys", "id_ed25519"));
    assert.throws(
      () => valuesFromEntry(exchangeKind, { hosts: ["h"], identity: "keys/id_ed25519" }, "r"),
      entryError("r", "deploy[0].identity", /^must be an absolute path\.$/),
    );
  });
});

describe("commands and names", () => {
  const cfg: ExchangeConfig = {
    hosts: ["admin@ex1"],
    port: 2222,
    identity: "/k",
    sshOptions: ["UserKnownHostsFile=/kh"],
    services: ["IIS", "SMTP"],
    removeOld: false,
    dir: "C:/ProgramData/wile",
    powershell: "powershell",
    pfxLegacy: false,
  };

  test("scp and ssh argv: batch mode, port spelled per program, -- before the host, no password", () => {
    const path = remotePfxPath(cfg, "mail.example.com", THUMB);
    assert.equal(path, "C:/ProgramData/wile/wile-mail.example.com-01234567.pfx");
    const c = hostCommands(cfg, "admin@ex1", "/tmp/w/certificate.pfx", path);
    // ssh-transport.ts's order, as for the ssh target; scp without -q, which hid ssh's messages.
    const auth = ["-o", "BatchMode=yes", "-i", "/k", "-o", "IdentitiesOnly=yes"];
    const rest = ["-o", "UserKnownHostsFile=/kh", "-o", "ConnectTimeout=20"];
    assert.deepEqual(c.scp, [
      "scp",
      ...auth,
      "-P",
      "2222",
      ...rest,
      "--",
      "/tmp/w/certificate.pfx",
      `admin@ex1:${path}`,
    ]);
    assert.deepEqual(c.ssh, [
      "ssh",
      ...auth,
      "-p",
      "2222",
      ...rest,
      "--",
      "admin@ex1",
      "powershell",
      "-NoProfile",
      "-NonInteractive",
      "-Command",
      "-",
    ]);
  });

  test("an IPv6 host is bracketed for scp only; a given ConnectTimeout replaces the default", () => {
    const c = hostCommands(
      { ...cfg, sshOptions: ["ConnectTimeout=3"] },
      "admin@fd00::1",
      "/l.pfx",
      "C:/x.pfx",
    );
    assert.equal(c.scp.at(-1), "admin@[fd00::1]:C:/x.pfx");
    assert.equal(c.ssh.at(-6), "admin@fd00::1");
    assert.equal(c.ssh.filter((a) => a.startsWith("ConnectTimeout")).length, 1);
  });

  test("odd certificate names make a plain file name", () => {
    assert.equal(remotePfxPath({ dir: "/" }, "a b'c", THUMB), "/wile-a_b_c-01234567.pfx");
  });

  test("thumbprint and friendly name", () => {
    assert.equal(thumbprintOf(Buffer.from("abc")), "A9993E364706816ABA3E25717850C26C9CD0D89D");
    assert.equal(
      friendlyNameFor("mail.example.com", new Date("2026-03-01T12:00:00Z")),
      "wile mail.example.com 2026-03-01",
    );
  });
});
