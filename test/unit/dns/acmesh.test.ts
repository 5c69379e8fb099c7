/**
 * The acmesh DNS provider (src/dns/providers/acmesh.ts) with the acme.sh stand-in of
 * test/fixtures/acmesh: the driver's argument handling, acme.sh's functions and paths as the
 * scripts see them, failures, finding acme.sh and the script, the names, and the copy of acme.sh's
 * saved values. Against BIND9 and Pebble: test/e2e/dns-acmesh.test.ts.
 */
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { type DnsRecord, readProviderSettings } from "../../../src/dns/provider";
import { acmeshProvider, importSavedValues, locateAcmesh } from "../../../src/dns/providers/acmesh";
import { dnsProvider, providerFromName } from "../../../src/dns/registry";
import { solversFor } from "../../../src/flow/solvers";
import { WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { SettingError } from "../../../src/util/settings";
import { repoRoot } from "../../helpers/wile";

const dir = mkdtempSync(join(tmpdir(), "wile-unit-dns-acmesh-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the stand-in acme.sh with extra dnsapi scripts; its own wile home. */
function install(name: string, scripts: Record<string, string>): { acmesh: string; home: string } {
  const root = join(dir, name);
  cpSync(join(repoRoot, "test", "fixtures", "acmesh"), join(root, "acme"), { recursive: true });
  for (const [file, body] of Object.entries(scripts)) writeFileSync(join(root, "acme", "dnsapi", file), body);
  mkdirSync(join(root, "home"), { mode: 0o700 });
  return { acmesh: join(root, "acme"), home: join(root, "home") };
}

function provider(
  given: Record<string, unknown>,
  home: string,
  env: Record<string, string | undefined> = { PATH: process.env.PATH },
) {
  const { values } = readProviderSettings(acmeshProvider, given, { env }, (k) => k);
  return acmeshProvider.create(values as never, { logger: silentLogger, env, home });
}

const record = (value: string, identifier = "example.com"): DnsRecord => ({
  fqdn: `_acme-challenge.${identifier}`,
  value,
  identifier,
  token: "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
});

describe("acmesh: the driver runs dns_x_add / dns_x_rm with acme.sh's functions", () => {
  test("FQDN and VALUE arrive as two arguments, literally (quotes, $(), backticks, spaces)", async () => {
    const out = join(dir, "args.out");
    const marker = join(dir, "executed");
    const { acmesh, home } = install("args", {
      "dns_echo.sh": `dns_echo_add() {\n  printf '%s\\n' "$#" "$1" "$2" >"$ECHO_OUT"\n}\ndns_echo_rm() {\n  printf '%s\\n' rm "$#" "$1" "$2" >>"$ECHO_OUT"\n}\n`,
    });
    const value = `a "b" 'c' $(touch ${marker}) \`touch ${marker}\` $HOME ;|& d`;
    const p = provider({ script: "dns_echo", acmesh }, home, { PATH: process.env.PATH, ECHO_OUT: out });
    await p.present(record(value));
    assert.deepEqual(readFileSync(out, "utf8").split("\n").slice(0, 3), [
      "2",
      "_acme-challenge.example.com",
      value,
    ]);
    await p.cleanup(record(value));
    assert.deepEqual(readFileSync(out, "utf8").split("\n").slice(3, 7), [
      "rm",
      "2",
      "_acme-challenge.example.com",
      value,
    ]);
    assert.equal(existsSync(marker), false, "nothing in the value was executed");
    assert.equal(p.describe(), "acmesh:dns_echo");
  });

  test("the script sees acme.sh's functions and paths: saved values in the home, 0600, read back", async () => {
    const out = join(dir, "env.out");
    const { acmesh, home } = install("env", {
      "dns_envy.sh": [
        "dns_envy_add() {",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text
        '  ENVY_TOKEN="${ENVY_TOKEN:-$(_readaccountconf_mutable ENVY_TOKEN)}"',
        '  if [ -z "$ENVY_TOKEN" ]; then _err "no ENVY_TOKEN"; return 1; fi',
        '  _saveaccountconf_mutable ENVY_TOKEN "$ENVY_TOKEN"',
        '  _savedomainconf ENVY_ZONE "zone-of-$1"',
        '  printf "%s\\n" "$_SCRIPT_HOME" "$LE_WORKING_DIR" "$LE_CONFIG_HOME" "$ACCOUNT_CONF_PATH" "$DOMAIN_CONF" "$USER_AGENT" "$(_readdomainconf ENVY_ZONE)" >"$ENVY_OUT"',
        '  _info "token saved"',
        "}",
        "",
      ].join("\n"),
    });
    const conf = join(home, "dns", "acmesh");
    await provider({ script: "dns_envy", acmesh }, home, {
      PATH: process.env.PATH,
      ENVY_OUT: out,
      ENVY_TOKEN: "tok-123456789",
    }).present(record("v1"));
    assert.deepEqual(readFileSync(out, "utf8").trimEnd().split("\n"), [
      acmesh,
      acmesh,
      conf,
      join(conf, "account.conf"),
      join(conf, "domains", "example.com.conf"),
      "acme.sh/0.0.0-wile-test-stand-in (https://github.com/acmesh-official/acme.sh)",
      "zone-of-_acme-challenge.example.com",
    ]);
    assert.equal(readFileSync(join(conf, "account.conf"), "utf8"), "SAVED_ENVY_TOKEN='tok-123456789'\n");
    assert.equal(statSync(join(conf, "account.conf")).mode & 0o777, 0o600);
    assert.equal(statSync(conf).mode & 0o777, 0o700);
    // Without the variable: the saved value.
    rmSync(out);
    await provider({ script: "dns_envy", acmesh }, home, { PATH: process.env.PATH, ENVY_OUT: out }).present(
      record("v2"),
    );
    assert.ok(existsSync(out));
  });

  test("a failing script: its exit code and its own last lines, printable and capped", async () => {
    const { acmesh, home } = install("fail", {
      "dns_nope.sh": `dns_nope_add() {\n  _info "asking the API"\n  _err "API said: \x1b[31mforbidden\x1b[0m $(printf 'x%.0s' $(seq 1 600))"\n  return 1\n}\n`,
      "dns_half.sh": "dns_half_add() {\n  return 0\n}\n",
      "dns_broken.sh": "dns_broken_add() {\n",
    });
    const p = provider({ script: "dns_nope", acmesh }, home);
    await assert.rejects(p.present(record("v")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(
        e.message,
        /^acme\.sh's dns_nope_add _acme-challenge\.example\.com failed \(exit 1\): API said: .*forbidden/,
      );
      assert.ok(!e.message.includes("\u001b"), "no escape character");
      assert.ok(e.message.length < 600, `capped: ${e.message.length}`);
      assert.match(e.hint ?? "", /acme\.sh's wiki names for dns_nope/);
      return true;
    });
    await assert.rejects(
      provider({ script: "dns_half", acmesh }, home).cleanup(record("v")),
      (e: unknown) => {
        assert.ok(e instanceof WileError);
        assert.match(
          e.message,
          /dns_half_rm .* failed \(exit 3\): .*dns_half\.sh has no function named dns_half_rm/,
        );
        assert.match(e.hint ?? "", /Remove the TXT value v at _acme-challenge\.example\.com by hand/);
        return true;
      },
    );
    await assert.rejects(
      provider({ script: "dns_broken", acmesh }, home).present(record("v")),
      /dns_broken_add .* failed/,
    );
  });

  test("an HTTP API script: acme.sh's _post and _get (curl), headers in _H1, HTTP_HEADER in wile's home", async () => {
    const seen: { method?: string; url?: string; auth?: string; ua?: string; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({
          method: req.method,
          url: req.url,
          auth: req.headers.authorization,
          ua: req.headers["user-agent"],
          body,
        });
        res.setHeader("Content-Type", "application/json");
        res.end(req.method === "GET" ? '{"result":[{"id":"rec-42"}]}' : '{"success":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const { acmesh, home } = install("http", {
        "dns_api.sh": [
          "dns_api_add() {",
          '  export _H1="Authorization: Bearer $API_TOKEN"',
          `  body="$(printf '{"name":"%s","content":"%s"}' "$1" "$2")"`,
          '  response="$(_post "$body" "$API_URL/records" "" "POST" "application/json")"',
          '  _contains "$response" \'"success":true\' || { _err "add failed: $response"; return 1; }',
          '  grep -q "^HTTP/1.1 200" "$HTTP_HEADER" || { _err "no header in $HTTP_HEADER"; return 1; }',
          '  echo "$HTTP_HEADER" >"$API_OUT"',
          "}",
          "dns_api_rm() {",
          '  export _H1="Authorization: Bearer $API_TOKEN"',
          '  id="$(_get "$API_URL/records?name=$1" | _egrep_o \'"id":"[^"]*"\' | cut -d \'"\' -f 4)"',
          '  _post "" "$API_URL/records/$id" "" "DELETE" >/dev/null',
          "}",
          "",
        ].join("\n"),
      });
      const out = join(dir, "http.out");
      const p = provider({ script: "dns_api", acmesh }, home, {
        PATH: process.env.PATH,
        API_URL: api,
        API_TOKEN: "t0ken",
        API_OUT: out,
      });
      await p.present(record("v-1"));
      await p.cleanup(record("v-1"));
      assert.equal(readFileSync(out, "utf8").trim(), join(home, "dns", "acmesh", "http.header"));
      assert.equal(statSync(join(home, "dns", "acmesh", "http.header")).mode & 0o777, 0o600, "umask 077");
      assert.deepEqual(
        seen.map((x) => [x.method, x.url, x.auth, x.body]),
        [
          ["POST", "/records", "Bearer t0ken", '{"name":"_acme-challenge.example.com","content":"v-1"}'],
          ["GET", "/records?name=_acme-challenge.example.com", "Bearer t0ken", ""],
          ["DELETE", "/records/rec-42", "Bearer t0ken", ""],
        ],
      );
      assert.match(seen[0]?.ua ?? "", /^acme\.sh\//);
    } finally {
      server.close();
    }
  });

  test("acme.sh's debug output and log stay off (they show API keys); --acmesh-timeout stops a script", async () => {
    const log = join(dir, "acme.log");
    const { acmesh, home } = install("quiet", {
      "dns_chatty.sh":
        'dns_chatty_add() {\n  _debug token "$CHATTY_TOKEN"\n  _err "refused"\n  return 1\n}\n',
      "dns_slowpoke.sh": "dns_slowpoke_add() {\n  sleep 5\n}\n",
    });
    const env = {
      PATH: process.env.PATH,
      CHATTY_TOKEN: "chatty-secret-1234",
      DEBUG: "3",
      OUTPUT_INSECURE: "1",
      LOG_FILE: log,
      LOG_LEVEL: "3",
    };
    await assert.rejects(
      provider({ script: "dns_chatty", acmesh }, home, env).present(record("v")),
      (e: unknown) => {
        assert.ok(e instanceof WileError);
        assert.match(e.message, /failed \(exit 1\): refused$/);
        return true;
      },
    );
    assert.equal(existsSync(log), false);
    const started = Date.now();
    await assert.rejects(
      provider({ script: "dns_slowpoke", acmesh, timeout: 1 }, home).present(record("v")),
      /acme\.sh's dns_slowpoke_add _acme-challenge\.example\.com failed \(timed out after 1 s\)/,
    );
    assert.ok(Date.now() - started < 4000);
  });

  test("runs one at a time (scripts rewrite account.conf in place)", async () => {
    const log = join(dir, "serial.log");
    const { acmesh, home } = install("serial", {
      "dns_slow.sh": `dns_slow_add() {\n  echo "start $2" >>"$SLOW_LOG"\n  sleep 0.2\n  echo "end $2" >>"$SLOW_LOG"\n}\n`,
    });
    const env = { PATH: process.env.PATH, SLOW_LOG: log };
    await Promise.all([
      provider({ script: "dns_slow", acmesh }, home, env).present(record("a")),
      provider({ script: "dns_slow", acmesh }, home, env).present(record("b")),
    ]);
    assert.deepEqual(readFileSync(log, "utf8").trimEnd().split("\n"), [
      "start a",
      "end a",
      "start b",
      "end b",
    ]);
  });
});

describe("acmesh: names, settings, finding acme.sh", () => {
  test("--dns acmesh:dns_x names the provider and its script", () => {
    assert.deepEqual(providerFromName("acmesh:dns_cf"), {
      kind: acmeshProvider,
      given: { script: "dns_cf" },
    });
    assert.deepEqual(providerFromName("acmesh"), { kind: acmeshProvider, given: {} });
    assert.equal(providerFromName("exec:foo"), undefined);
    assert.equal(providerFromName("nope:dns_cf"), undefined);
    assert.equal(dnsProvider("acmesh"), acmeshProvider);
  });

  test("renewal.json: acme.sh or the script gone is an error naming the field; the provider gets the home", async () => {
    const { acmesh, home } = install("renewal", {
      "dns_home.sh": 'dns_home_add() {\n  echo "$LE_CONFIG_HOME" >"$HOME_OUT"\n}\n',
    });
    const file = "/h/certs/example.com/renewal.json";
    const deps = { logger: silentLogger, env: {}, home, check: async () => {}, webroot: () => assert.fail() };
    const at = (entry: { provider: string; [k: string]: unknown }) => () =>
      solversFor(
        { name: "example.com", challenge: { type: "dns-01", webroots: {}, dns: { "example.com": entry } } },
        file,
        deps,
      );
    assert.throws(at({ provider: "acmesh", script: "dns_gone", acmesh }), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(
        e.message,
        /"challenge\.dns\.example\.com\.script" is not one of acme\.sh's dnsapi scripts/,
      );
      return true;
    });
    assert.throws(
      at({ provider: "acmesh", script: "dns_home", acmesh: join(dir, "gone") }),
      /"challenge\.dns\.example\.com\.acmesh" has no acme\.sh/,
    );
    const out = join(dir, "home.out");
    const solverFor = solversFor(
      {
        name: "example.com",
        challenge: {
          type: "dns-01",
          webroots: {},
          dns: { "example.com": { provider: "acmesh", script: "dns_home", acmesh } },
        },
      },
      file,
      { ...deps, env: { PATH: process.env.PATH, HOME_OUT: out } },
    );
    const solver = solverFor({ type: "dns", value: "example.com" }, false);
    await solver.present({
      identifier: { type: "dns", value: "example.com" },
      token: "t",
      keyAuthorization: "t.x",
    } as never);
    assert.equal(readFileSync(out, "utf8").trim(), join(home, "dns", "acmesh"));
  });

  test("script names: dns_ and lower-case letters, digits, _", () => {
    const { acmesh } = install("names", {});
    for (const bad of ["dns_CF", "cf", "dns_", "dns_x;id", "../dns_x", "dns_x.sh", "dns-cf", " dns_cf"]) {
      assert.throws(
        () => readProviderSettings(acmeshProvider, { script: bad, acmesh }, {}, (k) => k),
        (e: unknown) =>
          e instanceof SettingError && e.key === "script" && /dnsapi script's name/.test(e.message),
        bad,
      );
    }
    const { stored } = readProviderSettings(acmeshProvider, { script: "dns_test", acmesh }, {}, (k) => k);
    assert.deepEqual(stored, { provider: "acmesh", script: "dns_test", acmesh });
  });

  test("acme.sh: the script or its directory; $LE_WORKING_DIR; ~/.acme.sh; missing ones say where to get them", () => {
    const { acmesh } = install("locate", {});
    const api = join(acmesh, "dnsapi", "dns_test.sh");
    assert.deepEqual(locateAcmesh({ script: "dns_test", acmesh }), { acmesh: join(acmesh, "acme.sh"), api });
    assert.deepEqual(locateAcmesh({ script: "dns_test", acmesh: join(acmesh, "acme.sh") }), {
      acmesh: join(acmesh, "acme.sh"),
      api,
    });
    const bin = join(dir, "locate-bin");
    mkdirSync(bin);
    symlinkSync(join(acmesh, "acme.sh"), join(bin, "acme.sh"));
    assert.deepEqual(locateAcmesh({ script: "dns_test", acmesh: join(bin, "acme.sh") }), {
      acmesh: join(acmesh, "acme.sh"),
      api,
    });
    const fakeHome = join(dir, "locate");
    cpSync(acmesh, join(fakeHome, ".acme.sh"), { recursive: true });
    assert.equal(
      locateAcmesh({ script: "dns_test" }, fakeHome).acmesh,
      join(fakeHome, ".acme.sh", "acme.sh"),
    );
    const { values } = readProviderSettings(
      acmeshProvider,
      { script: "dns_test" },
      { env: { LE_WORKING_DIR: acmesh } },
      (k) => k,
    );
    assert.equal(values.acmesh, acmesh);

    const missing = join(dir, "nowhere");
    assert.throws(
      () => locateAcmesh({ script: "dns_test", acmesh: missing }),
      (e: unknown) =>
        e instanceof SettingError &&
        e.key === "acmesh" &&
        e.message.includes(`${missing} is not a file`) &&
        e.message.includes("git clone --depth 1 https://github.com/acmesh-official/acme.sh"),
    );
    assert.throws(
      () => locateAcmesh({ script: "dns_test" }, missing),
      (e: unknown) =>
        e instanceof SettingError &&
        e.key === undefined &&
        e.message.startsWith(`acme.sh is not at ${join(missing, ".acme.sh", "acme.sh")}`) &&
        e.message.includes("https://get.acme.sh"),
    );
    assert.throws(
      () => locateAcmesh({ script: "dns_nosuch", acmesh }),
      (e: unknown) =>
        e instanceof SettingError &&
        e.key === "script" &&
        e.message.includes(`there is no ${join(acmesh, "dnsapi", "dns_nosuch.sh")}`),
    );
  });

  test("acme.sh's saved values: the SAVED_* lines wile's account.conf lacks are copied, acme.sh's file only read", async () => {
    const d = join(dir, "import");
    mkdirSync(d);
    const theirs = join(d, "acme-account.conf");
    const ours = join(d, "account.conf");
    const theirText = [
      "LOG_FILE='/root/.acme.sh/acme.sh.log'",
      "SAVED_CF_Token='cf-token-1'",
      "SAVED_CF_Account_ID='acc'",
      "SAVED_BAD='it''s'",
      "SAVED_X='$(id)'",
      "CF_Key='old-style'",
      "",
    ].join("\n");
    writeFileSync(theirs, theirText);
    assert.deepEqual(await importSavedValues(ours, theirs), [
      "SAVED_CF_Token",
      "SAVED_CF_Account_ID",
      "SAVED_X",
    ]);
    assert.equal(
      readFileSync(ours, "utf8"),
      "SAVED_CF_Token='cf-token-1'\nSAVED_CF_Account_ID='acc'\nSAVED_X='$(id)'\n",
    );
    assert.equal(statSync(ours).mode & 0o777, 0o600);
    // Values wile's file has win; only missing keys come over; acme.sh's file is unchanged.
    writeFileSync(ours, "SAVED_CF_Token='newer'");
    writeFileSync(theirs, `${theirText}SAVED_GD_Key='gd'\n`);
    assert.deepEqual(await importSavedValues(ours, theirs), [
      "SAVED_CF_Account_ID",
      "SAVED_X",
      "SAVED_GD_Key",
    ]);
    assert.match(readFileSync(ours, "utf8"), /^SAVED_CF_Token='newer'\nSAVED_CF_Account_ID='acc'\n/);
    assert.equal(readFileSync(theirs, "utf8"), `${theirText}SAVED_GD_Key='gd'\n`);
    assert.deepEqual(await importSavedValues(ours, theirs), []);
    // No acme.sh file: an empty one of ours.
    const fresh = join(d, "fresh.conf");
    assert.deepEqual(await importSavedValues(fresh, join(d, "none")), []);
    assert.equal(readFileSync(fresh, "utf8"), "");
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
  });
});
