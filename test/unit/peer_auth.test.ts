// Peer-read tokens: what they are signed over (method, node URL, path, time) and the window they are good for.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { suite } from "uvu";
import {
  PEER_TOKEN_FUTURE_SECONDS,
  PEER_TOKEN_PAST_SECONDS,
  peerPath,
  peerRead,
  peerSignature,
  peerToken,
  peerTokenValid,
} from "../../src/fleet/peer_auth.ts";

const t = suite("peer auth");
const SECRET = "s3cret";
const A = "http://10.0.0.1:9292";
const B = "http://10.0.0.2:9292";
const X = "11111111-1111-4111-8111-111111111111";
const Y = "22222222-2222-4222-8222-222222222222";
const NOW = 1_800_000_000_000;

t("a token is good for the request it was made for, on the node it was made for", () => {
  const token = peerToken(SECRET, peerRead(A, X), NOW);
  assert.match(token, /^v2:1800000000:[0-9a-f]{64}$/);
  assert.equal(peerTokenValid(SECRET, peerRead(A, X), token, NOW), true);
  // The node's URL as registered, with or without a trailing slash; the method in any case.
  assert.equal(peerTokenValid(SECRET, peerRead(A + "/", X), token, NOW), true);
  assert.equal(peerTokenValid(SECRET, { ...peerRead(A, X), method: "get" }, token, NOW), true);
});

t("another node, image, method, path or secret: refused", () => {
  const token = peerToken(SECRET, peerRead(A, X), NOW);
  assert.equal(peerTokenValid(SECRET, peerRead(B, X), token, NOW), false, "another node");
  assert.equal(peerTokenValid(SECRET, peerRead(A, Y), token, NOW), false, "another image");
  assert.equal(peerTokenValid(SECRET, { ...peerRead(A, X), method: "DELETE" }, token, NOW), false, "another method");
  assert.equal(
    peerTokenValid(SECRET, { method: "GET", nodeUrl: A, path: `/v2/images/${X}/file` }, token, NOW),
    false,
    "another path",
  );
  assert.equal(peerTokenValid("other", peerRead(A, X), token, NOW), false, "another secret");
  assert.equal(peerTokenValid(SECRET, peerRead(A, X), null, NOW), false, "no token");
  assert.equal(peerTokenValid(SECRET, peerRead(A, X), token + "0", NOW), false, "malformed");
});

t("the window: 300 s in the past, 30 s ahead, not more", () => {
  assert.equal(PEER_TOKEN_PAST_SECONDS, 300);
  assert.equal(PEER_TOKEN_FUTURE_SECONDS, 30);
  const at = (offsetSeconds: number) =>
    peerTokenValid(SECRET, peerRead(A, X), peerToken(SECRET, peerRead(A, X), NOW + offsetSeconds * 1000), NOW);
  assert.equal(at(0), true);
  assert.equal(at(-300), true);
  assert.equal(at(-301), false);
  assert.equal(at(10), true);
  assert.equal(at(30), true);
  assert.equal(at(31), false);
  assert.equal(at(60), false);
});

t("the signed text: form, method, node URL, path and time; the old form (image id and time) is refused", () => {
  const t0 = NOW / 1000;
  const want = createHmac("sha256", SECRET).update(`v2\nGET\n${A}\n${peerPath(X)}\n${t0}`).digest("hex");
  assert.equal(peerSignature(SECRET, peerRead(A, X), t0), want);
  const old = `${t0}:${createHmac("sha256", SECRET).update(`${X}\n${t0}`).digest("hex")}`;
  assert.equal(peerTokenValid(SECRET, peerRead(A, X), old, NOW), false);
});

t.run();
