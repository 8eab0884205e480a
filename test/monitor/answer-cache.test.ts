// The redirect front's cache of recent answers (RFC 3261 §8.2.7: a stateless UAS answers a
// retransmission as it answered the original): found again by branch, Call-ID and flow, gone
// after its age limit, and bounded by its ring however many answers go in.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AnswerCache,
  DEFAULT_ANSWER_CACHE_BYTES,
  MIN_ANSWER_CACHE_BYTES,
} from "../../src/monitor/answer-cache.js";
import { FakeClock } from "../helpers/fake-clock.js";

const FLOW = "udp|0|127.0.0.1|5062";

function answer(n: number): Buffer {
  return Buffer.from(`SIP/2.0 302 Moved Temporarily\r\nCall-ID: call-${n}\r\n\r\n`, "latin1");
}

describe("AnswerCache", () => {
  test("an answer is found again by branch, Call-ID and flow, with its method", () => {
    const cache = new AnswerCache({ maxAgeMs: 32_000, clock: new FakeClock() });
    cache.put("z9hG4bK-1", "call-1", FLOW, "INVITE", answer(1));
    const found = cache.find("z9hG4bK-1", "call-1", FLOW);
    assert.equal(found?.method, "INVITE");
    assert.deepEqual(found.bytes, answer(1));
    assert.equal(cache.find("z9hG4bK-1", "call-2", FLOW), undefined, "another call");
    assert.equal(cache.find("z9hG4bK-1", "call-1", "udp|0|127.0.0.1|5063"), undefined);
    assert.equal(cache.find("z9hG4bK-2", "call-1", FLOW), undefined, "another branch");
    assert.equal(cache.size, 1);
  });

  test("a second answer for the same request takes the first one's place", () => {
    const cache = new AnswerCache({ maxAgeMs: 32_000, clock: new FakeClock() });
    cache.put("z9hG4bK-1", "call-1", FLOW, "INVITE", answer(1));
    cache.put("z9hG4bK-1", "call-1", FLOW, "INVITE", answer(2));
    assert.deepEqual(cache.find("z9hG4bK-1", "call-1", FLOW)?.bytes, answer(2));
    assert.equal(cache.size, 1);
  });

  test("the bytes found are a copy: later answers do not change them", () => {
    const cache = new AnswerCache({
      bytes: MIN_ANSWER_CACHE_BYTES,
      maxAgeMs: 1000,
      clock: new FakeClock(),
    });
    cache.put("z9hG4bK-1", "call-1", FLOW, "INVITE", answer(1));
    const found = cache.find("z9hG4bK-1", "call-1", FLOW)!;
    for (let i = 2; i < 2000; i++)
      cache.put(`z9hG4bK-${i}`, `call-${i}`, FLOW, "INVITE", answer(i));
    assert.deepEqual(found.bytes, answer(1));
  });

  test("an answer is gone once older than maxAgeMs", () => {
    const clock = new FakeClock();
    const cache = new AnswerCache({ maxAgeMs: 3200, clock });
    cache.put("z9hG4bK-1", "call-1", FLOW, "REGISTER", answer(1));
    clock.tick(3200);
    assert.equal(cache.find("z9hG4bK-1", "call-1", FLOW)?.method, "REGISTER");
    clock.tick(1);
    assert.equal(cache.find("z9hG4bK-1", "call-1", FLOW), undefined);
    assert.equal(cache.size, 0);
  });

  test("100,000 answers into a 16 KiB ring: only what fits of the newest is kept", () => {
    const cache = new AnswerCache({
      bytes: MIN_ANSWER_CACHE_BYTES,
      maxAgeMs: 32_000,
      clock: new FakeClock(),
    });
    for (let i = 0; i < 100_000; i++) {
      cache.put(`z9hG4bK-${i}`, `call-${i}`, FLOW, "INVITE", answer(i));
    }
    const record = answer(99_999).length + "INVITE".length;
    assert.ok(cache.size <= Math.floor(MIN_ANSWER_CACHE_BYTES / record), `${cache.size} kept`);
    assert.ok(cache.size > 0);
    assert.deepEqual(cache.find("z9hG4bK-99999", "call-99999", FLOW)?.bytes, answer(99_999));
    assert.equal(cache.find("z9hG4bK-0", "call-0", FLOW), undefined);
  });

  test("with the default ring, 10,000 answers are all kept", () => {
    const cache = new AnswerCache({ maxAgeMs: 32_000, clock: new FakeClock() });
    for (let i = 0; i < 10_000; i++) {
      cache.put(`z9hG4bK-${i}`, `call-${i}`, FLOW, "INVITE", answer(i));
    }
    assert.equal(cache.size, 10_000);
    for (let i = 0; i < 10_000; i += 997) {
      assert.deepEqual(cache.find(`z9hG4bK-${i}`, `call-${i}`, FLOW)?.bytes, answer(i));
    }
    assert.ok(DEFAULT_ANSWER_CACHE_BYTES >= 10_000 * 450);
  });

  test("a ring smaller than the minimum is refused, naming it", () => {
    assert.throws(
      () => new AnswerCache({ bytes: 1000, maxAgeMs: 1, clock: new FakeClock() }),
      /answer cache bytes/,
    );
  });
});
