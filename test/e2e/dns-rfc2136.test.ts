/**
 * src/dns against a real BIND9 (test/helpers/bind9.ts): TSIG-signed RFC 2136 updates of TXT
 * records, read back with wile's own resolver code and, independently, with node:dns; the errors
 * BIND9 gives for a wrong secret, an unknown key, a stale clock and a zone it does not serve; TCP
 * after a truncated UDP answer; timeouts. One named for the whole file (it starts in ~0.3 s).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { addTxt, deleteTxt, findZone, type UpdateTarget } from "../../src/dns/rfc2136";
import { exchange, query, queryTxt } from "../../src/dns/transport";
import { readTsigKeyFile, signMessage, verifyAnswer } from "../../src/dns/tsig";
import { CLASS, DnsError, encodeMessage, encodeTxt, message, OPCODE, TYPE } from "../../src/dns/wire";
import { type Bind9, bind9Unavailable, bindKeyFile, startBind9 } from "../helpers/bind9";
import { skipUnlessAvailable } from "../helpers/ci";
import { findBinary } from "../helpers/testenv";

const skip = skipUnlessAvailable(bind9Unavailable());

let bind: Bind9;
let target: UpdateTarget;

/** Each test works on its own name, so they can run in any order. */
const fqdn = (label: string) => `_acme-challenge.${label}.example.test`;

/** The TXT values of a name as node:dns sees them at the test server (an independent reader). */
async function nodeTxt(name: string): Promise<string[]> {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([bind.serverArg]);
  try {
    return (await r.resolveTxt(name)).map((chunks) => chunks.join("")).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOTFOUND" || (e as NodeJS.ErrnoException).code === "ENODATA")
      return [];
    throw e;
  }
}

function isDnsError(rcode: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof DnsError, `expected a DnsError, got ${e}`);
    assert.equal(e.rcode, rcode, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

describe("RFC 2136 updates against BIND9", { skip }, () => {
  before(async () => {
    const started = performance.now();
    bind = await startBind9({ zones: ["example.test", "alias.test"] });
    console.log(
      `dns-rfc2136: named ready in ${Math.round(performance.now() - started)} ms on ${bind.serverArg}`,
    );
    target = {
      server: bind.server,
      key: readTsigKeyFile(bind.keyFiles["wile-test"] as string),
      timeoutMs: 2000,
    };
  });

  after(async () => {
    await bind?.stop();
  });

  it("adds a TXT record, both readers see it, deletes it, both see it gone (hmac-sha256)", async () => {
    const name = fqdn("add-delete");
    await addTxt(target, name, "value-1", 60);
    assert.deepEqual(await queryTxt(bind.server, name), ["value-1"]);
    assert.deepEqual(await nodeTxt(name), ["value-1"]);
    const m = await query(bind.server, name, TYPE.TXT);
    assert.equal(m.answers[0]?.ttl, 60);
    await deleteTxt(target, name, "value-1");
    assert.deepEqual(await queryTxt(bind.server, name), []);
    assert.deepEqual(await nodeTxt(name), []);
  });

  it("works the same with an hmac-sha512 key, with the zone given", async () => {
    const name = fqdn("sha512");
    const t512 = {
      ...target,
      key: readTsigKeyFile(bind.keyFiles["wile-test-512"] as string),
      zone: "example.test",
    };
    assert.equal(t512.key.algorithm, "hmac-sha512");
    await addTxt(t512, name, "v512", 30);
    assert.deepEqual(await nodeTxt(name), ["v512"]);
    await deleteTxt(t512, name, "v512");
    assert.deepEqual(await nodeTxt(name), []);
  });

  it("two values on one name (a name and its wildcard): deleting one leaves the other; add and delete repeat harmlessly", async () => {
    const name = fqdn("two-values");
    await Promise.all([addTxt(target, name, "apex", 60), addTxt(target, name, "wildcard", 60)]);
    await addTxt(target, name, "apex", 60);
    assert.deepEqual(await nodeTxt(name), ["apex", "wildcard"]);
    await deleteTxt(target, name, "apex");
    await deleteTxt(target, name, "apex");
    assert.deepEqual(await queryTxt(bind.server, name), ["wildcard"]);
    await deleteTxt(target, name, "wildcard");
    assert.deepEqual(await nodeTxt(name), []);
  });

  it("finds the zone by walking up SOA queries, in either zone, and names the server when it serves none", async () => {
    assert.equal(await findZone(bind.server, "_acme-challenge.a.b.c.example.test"), "example.test");
    assert.equal(await findZone(bind.server, "_acme-challenge.www.Alias.Test."), "alias.test");
    assert.equal(await findZone(bind.server, "example.test"), "example.test");
    await assert.rejects(
      findZone(bind.server, "_acme-challenge.example.org"),
      (e: unknown) =>
        e instanceof DnsError &&
        e.message.startsWith(`DNS server ${bind.serverArg} is not authoritative for any zone holding`) &&
        /example\.org: REFUSED/.test(e.message),
    );
  });

  it("a wrong secret is BADSIG, an unknown key name BADKEY, both naming the server, and nothing is added", async () => {
    const name = fqdn("wrong-key");
    const dir = bind.tmp;
    const wrongSecret = join(dir, "wrong-secret.key");
    writeFileSync(
      wrongSecret,
      bindKeyFile("wile-test", "hmac-sha256", Buffer.alloc(32, 9).toString("base64")),
    );
    await assert.rejects(
      addTxt({ ...target, key: readTsigKeyFile(wrongSecret) }, name, "nope", 60),
      isDnsError(
        "BADSIG",
        new RegExp(`^DNS server ${bind.serverArg} rejected the TSIG key "wile-test": NOTAUTH/BADSIG$`),
      ),
    );
    const unknown = join(dir, "unknown.key");
    writeFileSync(unknown, bindKeyFile("nobody", "hmac-sha256", Buffer.alloc(32, 9).toString("base64")));
    await assert.rejects(
      addTxt({ ...target, key: readTsigKeyFile(unknown) }, name, "nope", 60),
      isDnsError("BADKEY", /rejected the TSIG key "nobody": NOTAUTH\/BADKEY$/),
    );
    assert.deepEqual(await nodeTxt(name), []);
  });

  it("a request signed an hour ago is BADTIME from the server", async () => {
    const request = encodeMessage(
      message({
        id: 4321,
        opcode: OPCODE.UPDATE,
        questions: [{ name: "example.test", type: TYPE.SOA, class: CLASS.IN }],
        authorities: [
          { name: fqdn("badtime"), type: TYPE.TXT, class: CLASS.IN, ttl: 60, rdata: encodeTxt("late") },
        ],
      }),
    );
    const key = target.key;
    assert.ok(key);
    const signed = signMessage(request, key, Date.now() - 3600_000);
    const answer = await exchange(bind.server, signed.wire, { timeoutMs: 2000 });
    assert.throws(
      () => verifyAnswer(answer, key, signed.mac, bind.serverArg),
      isDnsError("BADTIME", /NOTAUTH\/BADTIME/),
    );
    assert.deepEqual(await nodeTxt(fqdn("badtime")), []);
  });

  it("an update for a zone the server does not serve is NOTAUTH, with a hint", async () => {
    await assert.rejects(
      addTxt({ ...target, zone: "example.org" }, "_acme-challenge.example.org", "x", 60),
      (e: unknown) => {
        isDnsError(
          "NOTAUTH",
          new RegExp(`^DNS server ${bind.serverArg} refused to add TXT .* in zone example.org: NOTAUTH$`),
        )(e);
        assert.match((e as DnsError).hint ?? "", /primary/);
        return true;
      },
    );
    await assert.rejects(
      addTxt({ ...target, zone: "alias.test" }, fqdn("outside"), "x", 60),
      /is not inside the zone alias\.test/,
    );
  });

  it("an answer too big for UDP (TC set) is fetched again over TCP", async () => {
    const name = fqdn("big");
    const values = Array.from({ length: 12 }, (_, i) => `${String(i).padStart(2, "0")}-${"x".repeat(60)}`);
    for (const v of values) await addTxt(target, name, v, 60);
    // Without EDNS, BIND9 cuts UDP answers at 512 bytes and sets TC.
    const udpOnly = await new Promise<Buffer>((resolve, reject) => {
      const s = createSocket("udp4");
      s.on("message", (buf) => {
        s.close();
        resolve(buf);
      });
      s.on("error", reject);
      s.send(
        encodeMessage(message({ id: 77, questions: [{ name, type: TYPE.TXT, class: CLASS.IN }] })),
        bind.port,
        "127.0.0.1",
      );
    });
    assert.ok((udpOnly.readUInt16BE(2) & 0x200) !== 0, "BIND9's UDP answer has TC set");
    assert.deepEqual((await queryTxt(bind.server, name)).sort(), values);
    for (const v of values) await deleteTxt(target, name, v);
    assert.deepEqual(await queryTxt(bind.server, name), []);
  });

  it("a lagging secondary (helper): it serves the zone, misses an update until notified, then has it", async () => {
    const started = performance.now();
    const secondary = await startBind9({ zones: ["example.test"], secondaryOf: bind });
    console.log(`dns-rfc2136: secondary ready in ${Math.round(performance.now() - started)} ms`);
    try {
      const name = fqdn("lagging");
      assert.equal(await findZone(secondary.server, name), "example.test");
      await addTxt(target, name, "fresh", 60);
      assert.deepEqual(await queryTxt(bind.server, name), ["fresh"]);
      assert.deepEqual(await queryTxt(secondary.server, name), [], "the secondary lags");
      await secondary.notify("example.test");
      assert.deepEqual(await queryTxt(secondary.server, name), ["fresh"]);
      await deleteTxt(target, name, "fresh");
      assert.deepEqual(await queryTxt(secondary.server, name), ["fresh"], "and lags again");
    } finally {
      await secondary.stop();
    }
  });

  it("parses the key file tsig-keygen writes", () => {
    const text = execFileSync(findBinary("tsig-keygen"), ["-a", "hmac-sha512", "keygen-test"], {
      encoding: "utf8",
    });
    const file = join(bind.tmp, "keygen.key");
    writeFileSync(file, text);
    const key = readTsigKeyFile(file);
    assert.deepEqual([key.name, key.algorithm, key.secret.length], ["keygen-test", "hmac-sha512", 64]);
  });
});

describe("DNS transport failures", () => {
  let silent: Socket;
  before(async () => {
    silent = createSocket("udp4");
    await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  });
  after(() => silent.close());

  it("a server that never answers is a timeout naming it", async () => {
    const port = silent.address().port;
    const started = performance.now();
    await assert.rejects(
      query({ host: "127.0.0.1", port }, "example.test", TYPE.SOA, { timeoutMs: 200 }),
      (e: unknown) =>
        e instanceof DnsError &&
        e.message === `no answer from DNS server 127.0.0.1:${port} over UDP within 200 ms`,
    );
    assert.ok(performance.now() - started < 1000);
  });

  it("a lost UDP query is sent again within the timeout", async () => {
    const server = createSocket("udp4");
    await new Promise<void>((r) => server.bind(0, "127.0.0.1", r));
    let seen = 0;
    server.on("message", (q, from) => {
      if (++seen === 1) return; // the first datagram is "lost"
      const answer = message({ id: q.readUInt16BE(0), qr: true, rcode: 3 });
      server.send(encodeMessage(answer), from.port, from.address);
    });
    try {
      const m = await query({ host: "127.0.0.1", port: server.address().port }, "x.test", TYPE.A, {
        timeoutMs: 2000,
      });
      assert.equal(m.rcode, 3);
      // Resent every quarter of the timeout: on a loaded machine a third copy may leave before
      // the answer to the second is read, so "at least once more" is what holds.
      assert.ok(seen >= 2, `seen ${seen}`);
    } finally {
      server.close();
    }
  });

  it("answers with another ID or from another port are ignored, the right one is taken", async () => {
    const server = createSocket("udp4");
    const other = createSocket("udp4");
    await Promise.all([
      new Promise<void>((r) => server.bind(0, "127.0.0.1", r)),
      new Promise<void>((r) => other.bind(0, "127.0.0.1", r)),
    ]);
    server.on("message", (q, from) => {
      const id = q.readUInt16BE(0);
      const answer = (answerId: number, rcode: number) =>
        encodeMessage(
          message({
            id: answerId,
            qr: true,
            rcode,
            questions: [{ name: "x.test", type: TYPE.A, class: CLASS.IN }],
          }),
        );
      other.send(answer(id, 2), from.port, from.address); // right ID, wrong source port: spoofed
      server.send(answer(id ^ 1, 2), from.port, from.address); // wrong ID
      // The real answer (NXDOMAIN) only after the others have had time to arrive.
      setTimeout(() => server.send(answer(id, 3), from.port, from.address), 50);
    });
    try {
      const m = await query({ host: "127.0.0.1", port: server.address().port }, "x.test", TYPE.A, {
        timeoutMs: 2000,
      });
      assert.equal(m.rcode, 3);
    } finally {
      server.close();
      other.close();
    }
  });
});
