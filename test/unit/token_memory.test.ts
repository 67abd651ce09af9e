// The memory of validated Keystone tokens: kept until each token's own expiry, least recently used dropped beyond its bound.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { makeIdentity } from "../../src/auth/identity.ts";
import { MAX_REMEMBERED_TOKENS, TokenMemory } from "../../src/auth/token_memory.ts";

const t = suite("token memory");
const later = () => Date.now() + 3_600_000;

t("bounded: beyond its size the least recently used token goes first", () => {
  const memory = new TokenMemory(3);
  for (const name of ["a", "b", "c"]) memory.keep(name, makeIdentity(name, "p", []), later());
  assert.equal(memory.recall("a")?.userId, "a", "a is now the most recently used");
  memory.keep("d", makeIdentity("d", "p", []), later());
  assert.equal(memory.size, 3);
  assert.equal(memory.recall("b"), undefined, "b, the least recently used, was dropped");
  for (const name of ["a", "c", "d"]) assert.equal(memory.recall(name)?.userId, name);
  assert.equal(MAX_REMEMBERED_TOKENS, 10_000);
});

t("a token is kept until its own expiry, never after; forget drops it", () => {
  const memory = new TokenMemory();
  memory.keep("past", makeIdentity("u", "p", []), Date.now() - 1);
  assert.equal(memory.size, 0, "an expired token is not kept");
  memory.keep("gone", makeIdentity("u", "p", []), later());
  memory.forget("gone");
  assert.equal(memory.recall("gone"), undefined);
  const expires = Date.now() + 60_000;
  memory.keep("t", makeIdentity("u", "p", ["Admin"]), expires);
  assert.deepEqual(memory.recall("t")?.roles, ["admin"]);
  const realNow = Date.now;
  try {
    Date.now = () => expires; // the token's own expiry
    assert.equal(memory.recall("t"), undefined);
    assert.equal(memory.size, 0, "an expired token is dropped when looked up");
  } finally {
    Date.now = realNow;
  }
});

t.run();
