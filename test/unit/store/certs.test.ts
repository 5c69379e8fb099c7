import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { type CertificateFiles, CertStore, utcStamp } from "../../../src/store/certs";
import type { RenewalConfig } from "../../../src/store/renewal";

const STABLE = ["privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"];
const files = (v: string): CertificateFiles => ({
  privkeyPem: `key ${v}\n`,
  certPem: `cert ${v}\n`,
  chainPem: `chain ${v}\n`,
  fullchainPem: `cert ${v}\nchain ${v}\n`,
});
const modeOf = async (p: string) => (await stat(p)).mode & 0o777;
/** A clock that always says the same second, so stamps collide and get -2, -3 suffixes. */
const fixedClock = () => new Date("2026-11-23T12:01:02.345Z");
const newHome = async () => join(await mkdtemp(join(tmpdir(), "wile-certs-")), "home");

describe("CertStore", () => {
  test("utcStamp is compact UTC", () => {
    assert.equal(utcStamp(fixedClock()), "20261123T120102Z");
  });

  test("install twice: current points to the second version and the stable paths read the second pair", async () => {
    const home = await newHome();
    const store = new CertStore(home, fixedClock);
    const dir = store.dir("example.com");
    const first = await store.install("example.com", files("v1"));
    assert.equal(first.versionDir, join(dir, "archive", "20261123T120102Z"));
    const second = await store.install("example.com", files("v2"));
    assert.equal(second.versionDir, join(dir, "archive", "20261123T120102Z-2"));
    assert.equal(await readlink(join(dir, "current")), "archive/20261123T120102Z-2");
    for (const f of STABLE) assert.equal(await readlink(join(dir, f)), `current/${f}`);
    assert.equal(await readFile(join(dir, "privkey.pem"), "utf8"), "key v2\n");
    assert.equal(await readFile(join(dir, "cert.pem"), "utf8"), "cert v2\n");
    assert.deepEqual(await store.readCurrent("example.com"), files("v2"));
    assert.equal(await modeOf(join(dir, "privkey.pem")), 0o600);
    assert.equal(await modeOf(join(dir, "cert.pem")), 0o644);
    for (const d of [home, join(home, "certs"), dir, join(dir, "archive"), second.versionDir]) {
      assert.equal(await modeOf(d), 0o700, d);
    }
    assert.deepEqual((await readdir(dir)).sort(), [
      "archive",
      "cert.pem",
      "chain.pem",
      "current",
      "fullchain.pem",
      "privkey.pem",
    ]);
  });

  test("pruning keeps `keep` complete versions, newest first, with -10 after -9", async () => {
    const store = new CertStore(await newHome(), fixedClock);
    for (let i = 1; i <= 12; i++) await store.install("a", files(`v${i}`), 3);
    const left = (await readdir(join(store.dir("a"), "archive"))).sort();
    assert.deepEqual(left, ["20261123T120102Z-10", "20261123T120102Z-11", "20261123T120102Z-12"]);
    assert.deepEqual(await store.readCurrent("a"), files("v12"));
  });

  test("pruning never removes the current version even if it is not among the newest", async () => {
    const store = new CertStore(await newHome(), fixedClock);
    await store.install("a", files("v1"), 1);
    const dir = store.dir("a");
    // A newer complete version that is not current (as if a run died just before switching).
    const newer = join(dir, "archive", "20991231T000000Z");
    await mkdir(newer);
    for (const f of [...STABLE, ".complete"]) await writeFile(join(newer, f), "x");
    await store.prune("a", 1);
    assert.deepEqual((await readdir(join(dir, "archive"))).sort(), ["20261123T120102Z", "20991231T000000Z"]);
    assert.deepEqual(await store.readCurrent("a"), files("v1"));
  });

  test("a crash while writing a version leaves the stable paths on the previous pair; pruning removes it", async () => {
    const store = new CertStore(await newHome(), fixedClock);
    await store.install("a", files("v1"));
    const dir = store.dir("a");
    // Simulated kill -9: version dir with a half-written key, no cert, no .complete, no switch.
    const broken = join(dir, "archive", "20261123T120102Z-2");
    await mkdir(broken);
    await writeFile(join(broken, "privkey.pem"), "key v2 (half");
    await writeFile(join(dir, ".current.tmp-123456"), "stray");
    assert.equal(await readFile(join(dir, "privkey.pem"), "utf8"), "key v1\n");
    assert.equal(await readFile(join(dir, "cert.pem"), "utf8"), "cert v1\n");
    assert.deepEqual(await store.readCurrent("a"), files("v1"));

    await store.install("a", files("v3"));
    const left = await readdir(join(dir, "archive"));
    assert.ok(!left.includes("20261123T120102Z-2"), "incomplete version pruned");
    assert.ok(!(await readdir(dir)).some((e) => e.includes(".tmp-")), "stray temp removed");
    assert.deepEqual(await store.readCurrent("a"), files("v3"));
  });

  test("missing stable links are recreated by the next install", async () => {
    const store = new CertStore(await newHome());
    await store.install("a", files("v1"));
    const dir = store.dir("a");
    await unlink(join(dir, "fullchain.pem"));
    await store.install("a", files("v2"));
    assert.ok((await lstat(join(dir, "fullchain.pem"))).isSymbolicLink());
    assert.equal(await readFile(join(dir, "fullchain.pem"), "utf8"), files("v2").fullchainPem);
  });

  test("renewal.json round trip, names() lists certificates, refuses empty files and bad names", async () => {
    const store = new CertStore(await newHome());
    assert.deepEqual(await store.names(), []);
    assert.equal(await store.readRenewal("b.example"), null);
    const cfg: RenewalConfig = {
      version: 1,
      name: "b.example",
      identifiers: [{ type: "dns", value: "b.example" }],
      challenge: { type: "http-01", webroots: { "b.example": "/var/www" } },
      keyType: "rsa-2048",
      server: "https://127.0.0.1:14000/dir",
      account: "default",
      email: [],
      mustStaple: false,
      preflight: true,
      resolve: [],
      reuseKey: false,
      createdAt: "2026-01-01T00:00:00Z",
      updatedAt: "2026-01-01T00:00:00Z",
      deploy: [],
    };
    await store.writeRenewal("b.example", cfg);
    assert.deepEqual(await store.readRenewal("b.example"), cfg);
    // 0600 (issue 9, bug 4): renewal.json may hold a --pfx-password; an older 0644 file is narrowed.
    assert.equal(await modeOf(join(store.dir("b.example"), "renewal.json")), 0o600);
    await chmod(join(store.dir("b.example"), "renewal.json"), 0o644);
    await store.writeRenewal("b.example", cfg);
    assert.equal(await modeOf(join(store.dir("b.example"), "renewal.json")), 0o600);
    await store.install("a.example", files("v1"));
    await store.ensureDirs("empty.example");
    assert.deepEqual(await store.names(), ["a.example", "b.example"]);
    await assert.rejects(store.install("c", { ...files("v1"), certPem: "" }), /its cert.pem would be empty/);
    assert.throws(() => store.dir(".."));
    assert.equal(store.lockPath("a.example"), `${store.dir("a.example")}.lock`);
  });

  test("kill -9 at random moments never leaves a stable key and certificate that do not belong together", async () => {
    const home = await newHome();
    const store = new CertStore(home);
    const dir = store.dir("k");
    const fixture = join(import.meta.dirname, "fixtures", "install-loop.ts");
    let next = 1;
    for (let round = 0; round < 20; round++) {
      const child = spawn(process.execPath, ["--import", "tsx", fixture, home, "k", String(next)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      // Wait until this child has installed at least once, then kill it somewhere in a later install.
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("installed")) resolve();
        });
        child.on("exit", (code) => reject(new Error(`child exited early with ${code}`)));
      });
      await new Promise((r) => setTimeout(r, Math.random() * 40));
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGKILL");
      await exited;
      next += 1000;

      const seen = new Set<string>();
      for (const f of STABLE) {
        const text = await readFile(join(dir, f), "utf8");
        const m = /^BEGIN (\d+) \w+\n[x]+\nEND (\d+)\n$/.exec(text);
        assert.ok(m, `round ${round}: ${f} is complete`);
        assert.equal(m[1], m[2]);
        seen.add(m[1] as string);
      }
      assert.equal(seen.size, 1, `round ${round}: stable files from one version, got ${[...seen]}`);
      const current = await store.readCurrent("k");
      assert.ok(current?.privkeyPem.startsWith(`BEGIN ${[...seen][0]} key`));
    }
    // The next install cleans up whatever the kills left behind.
    await store.install("k", files("final"), 3);
    const archive = await readdir(join(dir, "archive"));
    assert.ok(archive.length <= 3, `pruned to 3, got ${archive}`);
    for (const v of archive)
      assert.ok(STABLE.every(Boolean) && (await lstat(join(dir, "archive", v, ".complete"))));
    assert.ok(!(await readdir(dir)).some((e) => e.includes(".tmp-")));
  });
});
