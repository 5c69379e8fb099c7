import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import {
  checkBaseUrl,
  DEFAULT_DOWNLOAD_URL,
  downloadVerified,
  fetchText,
  fetchToTemp,
  formsHere,
  parseSums,
} from "../../../src/install/download";
import { UsageError, WileError } from "../../../src/util/errors";

const hex = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");
const repo = join(import.meta.dirname, "..", "..", "..");

describe("download address", () => {
  test("install.sh and src/install/download.ts name the same default", () => {
    const sh = readFileSync(join(repo, "install.sh"), "utf8");
    const m = /^WILE_DEFAULT_DOWNLOAD_URL="([^"]+)"$/m.exec(sh);
    assert.equal(m?.[1], DEFAULT_DOWNLOAD_URL);
  });

  test("https anywhere, http only on loopback; trailing slashes dropped", () => {
    assert.equal(checkBaseUrl("https://example.com/wile/"), "https://example.com/wile");
    assert.equal(checkBaseUrl("http://127.0.0.1:8080/a"), "http://127.0.0.1:8080/a");
    assert.equal(checkBaseUrl("http://localhost/a"), "http://localhost/a");
    assert.equal(checkBaseUrl("http://[::1]:9/a"), "http://[::1]:9/a");
    for (const bad of [
      "http://example.com/a",
      "ftp://127.0.0.1/a",
      "file:///tmp",
      "not a url",
      "http://127.0.0.1.evil.example/",
    ]) {
      assert.throws(() => checkBaseUrl(bad), UsageError, bad);
    }
  });
});

describe("SHA256SUMS", () => {
  test("sha256sum's text and binary forms; other lines ignored", () => {
    const a = "a".repeat(64);
    const b = "B".repeat(64);
    const sums = parseSums(`${a}  wile.cjs\n${b} *wile-linux-x64\r\ngarbage\n${"c".repeat(63)}  short\n`);
    assert.deepEqual(
      [...sums],
      [
        ["wile.cjs", a],
        ["wile-linux-x64", "b".repeat(64)],
      ],
    );
  });
});

describe("fetching", () => {
  let server: Server;
  let url = "";
  let dir = "";
  const body = Buffer.from("#!/usr/bin/env node\nconsole.log('wile 9.9.9')\n");
  const routes: Record<string, (res: import("node:http").ServerResponse) => void> = {
    "/rel/wile.cjs": (res) => res.end(body),
    "/rel/SHA256SUMS": (res) => res.end(`${hex(body)}  wile.cjs\n${hex("other")}  wile-linux-x64\n`),
    "/rel/wile-linux-x64": (res) => res.end("not the file SHA256SUMS describes"),
    "/moved/SHA256SUMS": (res) => res.writeHead(302, { location: "/rel/SHA256SUMS" }).end(),
    "/moved/wile.cjs": (res) => res.writeHead(301, { location: `${url}/rel/wile.cjs` }).end(),
    "/loop": (res) => res.writeHead(302, { location: "/loop" }).end(),
    "/big": (res) => res.end(Buffer.alloc(5000)),
    "/missing": (res) => res.writeHead(404).end(),
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "wile-dl-"));
    server = createServer((req, res) => (routes[req.url ?? ""] ?? ((r) => r.writeHead(404).end()))(res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a verified download lands next to the target with its hash", async () => {
    const got = await downloadVerified(`${url}/rel`, "wile.cjs", join(dir, "wile.cjs"));
    assert.equal(got.sha256, hex(body));
    assert.deepEqual(readFileSync(got.path), body);
    assert.equal(join(got.path, ".."), dir);
    rmSync(got.path);
  });

  test("redirects are followed (relative and absolute)", async () => {
    const got = await downloadVerified(`${url}/moved`, "wile.cjs", join(dir, "wile.cjs"));
    assert.deepEqual(readFileSync(got.path), body);
    rmSync(got.path);
    await assert.rejects(fetchText(`${url}/loop`), /too many redirects/);
  });

  test("a checksum mismatch leaves nothing behind", async () => {
    await assert.rejects(
      downloadVerified(`${url}/rel`, "wile-linux-x64", join(dir, "wile")),
      (e: unknown) => {
        assert.ok(e instanceof WileError);
        assert.match(e.message, /checksum mismatch for wile-linux-x64/);
        assert.match(e.hint ?? "", /Nothing was changed/);
        return true;
      },
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  test("no line for the file, HTTP errors and the size cap are errors, without temp files", async () => {
    await assert.rejects(
      downloadVerified(`${url}/rel`, "wile-linux-arm64", join(dir, "w")),
      /has no line for wile-linux-arm64/,
    );
    await assert.rejects(fetchText(`${url}/missing`), /HTTP 404/);
    await assert.rejects(fetchToTemp(`${url}/big`, dir, 1000), /more than the 1000 allowed/);
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(existsSync(join(dir, "w")), false);
  });
});

describe("compressed forms", () => {
  let server: Server;
  let url = "";
  let dir = "";
  const requested: string[] = [];
  const bin = Buffer.from(`#!/bin/sh\necho 'wile 9.9.9'\n${"x".repeat(5000)}\n`);
  const gz = gzipSync(bin);
  const xz = execFileSync("xz", ["-c"], { input: bin });
  const cut = xz.subarray(0, xz.length >> 1);
  const files: Record<string, Buffer> = {
    "/rel/wile-linux-x64.gz": gz,
    "/rel/wile-linux-x64.xz": xz,
    // Published as is (SHA256SUMS matches) but not a whole xz stream: decompression fails.
    "/broken/wile-linux-x64.xz": cut,
    "/broken/wile-linux-x64.gz": gz.subarray(0, gz.length >> 1),
    // A download cut short: SHA256SUMS names the whole file.
    "/short/wile-linux-x64.xz": cut,
  };
  const sums: Record<string, string> = {
    "/rel/SHA256SUMS": `${hex(xz)}  wile-linux-x64.xz\n${hex(gz)}  wile-linux-x64.gz\n`,
    "/gzonly/SHA256SUMS": `${hex(gz)}  wile-linux-x64.gz\n`,
    "/broken/SHA256SUMS": `${hex(cut)}  wile-linux-x64.xz\n${hex(gz.subarray(0, gz.length >> 1))}  wile-linux-x64.gz\n`,
    "/short/SHA256SUMS": `${hex(xz)}  wile-linux-x64.xz\n`,
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "wile-dlz-"));
    server = createServer((req, res) => {
      requested.push(req.url ?? "");
      const u = (req.url ?? "").replace("/gzonly/", "/rel/");
      const body = sums[req.url ?? ""] ?? files[u];
      if (body === undefined) res.writeHead(404).end();
      else res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const target = () => join(dir, "wile");
  const got = async (base: string, forms?: Parameters<typeof downloadVerified>[3]) => {
    requested.length = 0;
    const r = await downloadVerified(`${url}/${base}`, "wile-linux-x64", target(), forms);
    assert.deepEqual(readFileSync(r.path), bin);
    assert.equal(r.sha256, hex(bin), "the hash of the decompressed file (upgrade compares it)");
    assert.deepEqual(readdirSync(dir), [r.path.slice(dir.length + 1)], "only the decompressed file is left");
    rmSync(r.path);
    return { file: r.file, requested: [...requested] };
  };

  test("xz on PATH: the .xz form; else .gz (zlib); the file itself last", async () => {
    const path = mkdtempSync(join(tmpdir(), "wile-path-"));
    try {
      assert.deepEqual(
        (await formsHere({ PATH: path })).map((f) => f.ext),
        [".gz", ""],
        "no xz: gzip",
      );
      mkdirSync(join(path, "bb"));
      symlinkSync(
        execFileSync("sh", ["-c", "command -v busybox || command -v xz"]).toString().trim(),
        join(path, "bb", "unxz"),
      );
      const forms = await formsHere({ PATH: join(path, "bb") });
      assert.deepEqual(
        forms[0]?.argv,
        [join(path, "bb", "unxz"), "-c"],
        "unxz (busybox's) when there is no xz",
      );
      const withXz = await formsHere({ PATH: "/usr/bin:/bin" });
      assert.equal(withXz[0]?.argv?.[1], "-dc");
      assert.deepEqual(await got("rel", withXz), {
        file: "wile-linux-x64.xz",
        requested: ["/rel/SHA256SUMS", "/rel/wile-linux-x64.xz"],
      });
      assert.deepEqual(await got("rel", forms), {
        file: "wile-linux-x64.xz",
        requested: ["/rel/SHA256SUMS", "/rel/wile-linux-x64.xz"],
      });
      const noXz = await formsHere({ PATH: path });
      assert.deepEqual(await got("rel", noXz), {
        file: "wile-linux-x64.gz",
        requested: ["/rel/SHA256SUMS", "/rel/wile-linux-x64.gz"],
      });
      assert.equal((await got("gzonly", withXz)).file, "wile-linux-x64.gz", "a release without .xz: .gz");
    } finally {
      rmSync(path, { recursive: true, force: true });
    }
  });

  test("a download cut short is a checksum mismatch of the compressed file; nothing is decompressed or left", async () => {
    await assert.rejects(
      downloadVerified(`${url}/short`, "wile-linux-x64", target(), await formsHere()),
      (e: unknown) => {
        assert.ok(e instanceof WileError);
        assert.match(e.message, /checksum mismatch for wile-linux-x64\.xz/);
        return true;
      },
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  test("a file that matches SHA256SUMS but does not decompress: a clear error, nothing left", async () => {
    for (const forms of [await formsHere({ PATH: "/usr/bin:/bin" }), [{ ext: ".gz" as const }]]) {
      await assert.rejects(
        downloadVerified(`${url}/broken`, "wile-linux-x64", target(), forms),
        (e: unknown) => {
          assert.ok(e instanceof WileError);
          assert.match(e.message, /could not decompress wile-linux-x64\.(xz \(.*xz -dc\)|gz \(zlib\))/);
          assert.match(e.hint ?? "", /matched SHA256SUMS.*Nothing was changed/);
          return true;
        },
      );
      assert.deepEqual(readdirSync(dir), []);
    }
  });
});
