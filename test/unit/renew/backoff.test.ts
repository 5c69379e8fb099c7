import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_RETRY_AFTER_MS, nextAttemptAfterFailure } from "../../../src/renew/backoff";

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const now = new Date("2026-11-23T12:00:00Z");
const after = (failures: number, retryAfter?: number | null, random = () => 0) =>
  nextAttemptAfterFailure(failures, now, retryAfter, random).getTime() - now.getTime();

describe("nextAttemptAfterFailure", () => {
  test("1 min, 10 min, 100 min, then daily, never giving up", () => {
    assert.equal(after(1), MIN);
    assert.equal(after(2), 10 * MIN);
    assert.equal(after(3), 100 * MIN);
    assert.equal(after(4), DAY);
    assert.equal(after(5), DAY);
    assert.equal(after(1000), DAY);
  });

  test("0 or negative failures count as the first", () => {
    assert.equal(after(0), MIN);
    assert.equal(after(-3), MIN);
  });

  test("jitter adds at most 10 % and never shortens the schedule", () => {
    assert.equal(
      after(2, null, () => 0.999999),
      10 * MIN + Math.floor(10 * MIN * 0.1 * 0.999999),
    );
    for (let i = 0; i < 50; i++) {
      const d = nextAttemptAfterFailure(4, now).getTime() - now.getTime();
      assert.ok(d >= DAY && d <= DAY * 1.1, `${d}`);
    }
    // A broken random source cannot make it earlier or absurdly later.
    assert.equal(
      after(1, null, () => -5),
      MIN,
    );
    assert.equal(
      after(1, null, () => 7),
      MIN + 0.1 * MIN,
    );
  });

  test("a later Retry-After (e.g. rateLimited) wins, capped at 7 days", () => {
    assert.equal(after(1, 3 * 60 * MIN), 3 * 60 * MIN);
    assert.equal(after(4, 3 * DAY), 3 * DAY);
    assert.equal(after(1, 30 * DAY), MAX_RETRY_AFTER_MS);
    assert.equal(MAX_RETRY_AFTER_MS, 7 * DAY);
  });

  test("an earlier Retry-After does not shorten the schedule", () => {
    assert.equal(after(3, 5 * MIN), 100 * MIN);
    assert.equal(after(2, 0), 10 * MIN);
    assert.equal(after(2, null), 10 * MIN);
    assert.equal(after(2, Number.NaN), 10 * MIN);
  });
});
