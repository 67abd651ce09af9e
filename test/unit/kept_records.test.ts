// The kept records: Glance's visibility rules over a kept record, and the records on disk beside the index (written
// whole, merged, dropped with the entry; at start a record without an index row goes, an unreadable one is moved aside).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import { type Holding, KeptRecords } from "../../src/cache/kept_records.ts";
import { type KeptRecord, mayReadKept } from "../../src/images/kept_record.ts";
import { makeIdentity } from "../../src/auth/identity.ts";

const t = suite<{ dir: string }>("kept records", {} as never);
t.before.each(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), "gcn-kept-"));
});
t.after.each(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

function record(fields: Partial<KeptRecord> = {}): KeptRecord {
  return {
    id: randomUUID(),
    status: "active",
    owner: "ownerproj",
    visibility: "private",
    members: [],
    checksum: "c",
    os_hash_algo: "sha512",
    os_hash_value: "h",
    size: 10,
    seen_at: 1_790_000_000,
    ...fields,
  };
}

const who = (project: string, role = "member") => makeIdentity("u", project, [role]);

t("Glance's rules over a kept record: owner, admin, public, community, members seen; else not found", () => {
  const priv = record();
  assert.ok(mayReadKept(priv, who("ownerproj")));
  assert.ok(mayReadKept(priv, who("elsewhere", "admin")));
  assert.ok(!mayReadKept(priv, who("elsewhere")));
  assert.ok(mayReadKept(record({ visibility: "public" }), who("elsewhere")));
  assert.ok(mayReadKept(record({ visibility: "community" }), who("elsewhere")));
  const shared = record({ visibility: "shared", members: ["m1"] });
  assert.ok(mayReadKept(shared, who("m1")));
  assert.ok(!mayReadKept(shared, who("m2")));
  assert.ok(!mayReadKept(record({ members: ["m1"] }), who("m1")), "a private image's members do not count");
  assert.ok(!mayReadKept(shared, makeIdentity("u", null, ["member"])), "an unscoped token");
});

t("written whole with the members of every answer; pending while filling; dropped with the entry", async (ctx) => {
  const state = new Map<string, Holding>();
  const kept = new KeptRecords(ctx.dir, (id) => state.get(id) ?? "none");
  await kept.load(() => {});
  const r = record({ visibility: "shared" });
  await kept.keep({ ...r, members: ["m0"] });
  assert.equal(kept.get(r.id), undefined, "an image the cache does not hold is not kept");
  state.set(r.id, "filling");
  await kept.keep({ ...r, members: ["m1"] });
  assert.equal(kept.get(r.id), undefined, "not committed yet");
  await kept.committing(r);
  state.set(r.id, "committed");
  assert.deepEqual(kept.get(r.id)?.members, ["m1"], "the member seen while filling");
  await kept.keep({ ...r, members: ["m2"], status: "deactivated" });
  const file = join(ctx.dir, `${r.id}.json`);
  const onDisk = JSON.parse(readFileSync(file, "utf8")) as KeptRecord;
  assert.deepEqual([onDisk.members, onDisk.status], [["m1", "m2"], "deactivated"]);
  const written = statSync(file).mtimeMs;
  await kept.keep({ ...r, members: ["m2"], status: "deactivated", seen_at: r.seen_at + 5 });
  assert.equal(statSync(file).mtimeMs, written, "an unchanged answer is not written again");
  assert.deepEqual(readdirSync(ctx.dir), [`${r.id}.json`], "no temporary file left");
  await kept.drop(r.id);
  assert.ok(!existsSync(file));
  assert.equal(kept.count, 0);
});

t("at start: a record without its entry is removed, an unreadable one moved aside, the others read", async (ctx) => {
  const [good, orphan] = [record(), record()];
  writeFileSync(join(ctx.dir, `${good.id}.json`), JSON.stringify(good));
  writeFileSync(join(ctx.dir, `${orphan.id}.json`), JSON.stringify(orphan));
  const torn = randomUUID();
  writeFileSync(join(ctx.dir, `${torn}.json`), '{"id": "');
  writeFileSync(join(ctx.dir, `${good.id}.json.0123.tmp`), "half");
  const logged: string[] = [];
  const kept = new KeptRecords(ctx.dir, (id) => id === good.id || id === torn ? "committed" : "none");
  await kept.load((m) => logged.push(m));
  assert.deepEqual(kept.get(good.id), good);
  assert.equal(kept.count, 1);
  const names = readdirSync(ctx.dir).sort();
  assert.ok(names.includes(`${good.id}.json`));
  assert.ok(!names.includes(`${orphan.id}.json`), "the orphan is gone");
  assert.ok(names.some((n) => n.startsWith(`${torn}.json.unreadable-`)), "the torn one is moved aside");
  assert.ok(!names.some((n) => n.endsWith(".tmp")));
  assert.match(logged.join("\n"), /unreadable/);
});

t.run();
