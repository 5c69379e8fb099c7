import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { certStatus } from "../../../src/renew/status";
import { emptyState } from "../../../src/store/state";

const DAY = 86_400_000;
const now = new Date("2026-11-23T12:00:00Z");
// 90 days, issued 10 days ago: due at 60 days, i.e. in 50 days.
const cert = {
  notBefore: new Date(now.getTime() - 10 * DAY),
  notAfter: new Date(now.getTime() + 80 * DAY),
  // 0x87654321 has its top bit set: the DER content (and the ARI CertID) starts with a 00 byte.
  serialContent: Buffer.from("0087654321", "hex"),
};

describe("wile list status, offline", () => {
  test("ok, with the 1/3-of-lifetime moment", () => {
    const s = certStatus(cert, null, emptyState(), now);
    assert.equal(s.status, "ok");
    assert.equal(s.renewAt.getTime(), cert.notAfter.getTime() - 30 * DAY);
  });
  test("due once that moment passed; renewDays moves it", () => {
    assert.equal(certStatus(cert, null, emptyState(), new Date(now.getTime() + 51 * DAY)).status, "due");
    assert.equal(certStatus(cert, { renewDays: 85 }, emptyState(), now).status, "due");
  });
  test("the ARI moment cached by cron for this certificate wins", () => {
    const chosen = new Date(now.getTime() + 5 * DAY).toISOString();
    const state = {
      ...emptyState(),
      ari: {
        certId: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
        checkedAt: now.toISOString(),
        nextCheck: now.toISOString(),
        chosen,
      },
    };
    assert.equal(certStatus(cert, null, state, now).renewAt.toISOString(), chosen);
    assert.notEqual(
      certStatus(
        { ...cert, serialContent: Buffer.from("01", "hex") },
        null,
        state,
        now,
      ).renewAt.toISOString(),
      chosen,
      "another certificate's window is ignored",
    );
  });
  test("failing after a failed renewal, and after a renewal whose deploy failed", () => {
    const failed = certStatus(
      cert,
      null,
      { ...emptyState(), failures: 2, lastError: "preflight failed" },
      now,
    );
    assert.deepEqual([failed.status, failed.lastError], ["failing", "preflight failed"]);
    const undeployed = certStatus(
      cert,
      null,
      {
        ...emptyState(),
        deployPending: { serial: "0A", error: "dovecot still serves serial 09", since: now.toISOString() },
      },
      now,
    );
    assert.deepEqual(
      [undeployed.status, undeployed.lastError],
      ["failing", "deploy failed: dovecot still serves serial 09"],
    );
  });
  test("expired beats everything", () => {
    const later = new Date(cert.notAfter.getTime() + 1000);
    assert.equal(certStatus(cert, null, { ...emptyState(), failures: 3 }, later).status, "expired");
  });
});
