// The token bucket and its throttled streams: the rate on a fake clock, backpressure (one chunk at most), a rate change.
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { suite } from "uvu";
import { Bandwidth, throttled } from "../../src/streams/throttle.ts";

const t = suite("throttle");

t("a bucket lets rate × time pass, plus a 50 ms burst after a pause; 0 is no limit", () => {
  const clock = { ms: 10_000 };
  const b = new Bandwidth(1000, () => clock.ms);
  // 50 ms of burst pass at once; the next 1000 bytes are due a second later.
  assert.equal(b.take(50), undefined);
  const waited: number[] = [];
  const spy = (bytes: number) => {
    const before = b.totals.waitSeconds;
    void b.take(bytes);
    waited.push(Math.round((b.totals.waitSeconds - before) * 1000));
  };
  spy(1000);
  spy(500);
  assert.deepEqual(waited, [1000, 1500]);
  b.rate = 0;
  assert.equal(b.take(1 << 30), undefined);
  assert.equal(b.totals.bytes, 50 + 1500 + (1 << 30));
  assert.throws(() => (b.rate = -1), RangeError);
});

t("a throttled stream reads its source only as the consumer asks, one chunk ahead at most", async () => {
  let pulled = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled++;
      if (pulled > 20) c.close();
      else c.enqueue(new Uint8Array(1000));
    },
  }, { highWaterMark: 0 });
  const b = new Bandwidth(200_000);
  const reader = throttled(source, b).getReader();
  assert.equal((await reader.read()).value?.byteLength, 1000);
  // The consumer has not asked again: once the queued work has run, the source gave that one chunk only.
  await new Promise((r) => setImmediate(r));
  assert.equal(pulled, 1);
  let n = 1000;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
  }
  assert.equal(n, 20_000);
});

t("cancelling the throttled stream cancels its source", async () => {
  let cancelled: unknown;
  const source = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(10)),
    cancel: (reason) => void (cancelled = reason),
  });
  const reader = throttled(source, new Bandwidth(0)).getReader();
  await reader.read();
  await reader.cancel("stop");
  assert.equal(cancelled, "stop");
});

t.run();
