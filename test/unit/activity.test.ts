// The status page's last hour: per-minute downloads and bytes on an injected clock, old minutes dropped.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { Activity } from "../../src/http/activity.ts";

const t = suite("activity");

t("counts per minute, every minute of the hour listed oldest first, older ones dropped", () => {
  let now = Date.UTC(2026, 0, 1, 12, 0, 30);
  const a = new Activity(60, () => now);
  a.download("hit");
  a.download("miss");
  a.served(1000);
  now += 60_000; // 12:01:30
  a.download("hit");
  a.served(24);
  let hour = a.lastHour();
  assert.equal(hour.length, 60);
  assert.equal(hour[59].at, Date.UTC(2026, 0, 1, 12, 1) / 1000);
  assert.deepEqual(hour.slice(58).map((m) => [m.hits, m.misses, m.bytes]), [[1, 1, 1000], [1, 0, 24]]);
  assert.ok(hour.slice(0, 58).every((m) => m.hits + m.misses + m.bytes === 0));
  assert.ok(hour.every((m, i) => i === 0 || m.at === hour[i - 1].at + 60));
  now += 59 * 60_000; // 13:00:30: 12:00 has just left the window, 12:01 is the oldest minute
  a.download("miss");
  hour = a.lastHour();
  assert.deepEqual([hour[0].at, hour[0].hits, hour[0].bytes], [Date.UTC(2026, 0, 1, 12, 1) / 1000, 1, 24]);
  assert.deepEqual([hour[59].misses, hour.reduce((n, m) => n + m.hits + m.misses, 0)], [1, 2]);
  now += 3 * 3600_000; // hours later, nothing new: an empty hour
  assert.ok(a.lastHour().every((m) => m.hits + m.misses + m.bytes === 0));
});

t.run();
