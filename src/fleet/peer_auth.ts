// Peer requests carry an HMAC of the method, the target node's URL, the path and a timestamp under the fleet secret.
import { createHmac, timingSafeEqual } from "node:crypto";

/** The header a peer read carries its token in. */
export const PEER_AUTH_HEADER = "X-Fleet-Peer-Auth";
/** How old a token may be (the peers' clock difference plus the request's age), seconds. */
export const PEER_TOKEN_PAST_SECONDS = 300;
/** How far ahead of the serving node's clock a token may be, seconds. */
export const PEER_TOKEN_FUTURE_SECONDS = 30;
/** The token's form, first in the token and in the signed text: a node of another form refuses it. */
const VERSION = "v2";

/** The path a peer serves an image's bytes at (GET, signed). */
export const peerPath = (imageId: string) => `/x-fleet/peer/images/${imageId}`;

/** The path a peer serves a cached image's kept record at (GET, signed). */
export const peerRecordPath = (imageId: string) => `${peerPath(imageId)}/record`;

/** What a token is good for: one method on one path of one node (its worker_self_reference_url). */
export interface PeerRequest {
  method: string;
  /** The node asked: the URL it registered in the fleet, as the asking node found it there. */
  nodeUrl: string;
  path: string;
}

/** A peer read of an image's bytes from the node at `nodeUrl`. */
export const peerRead = (nodeUrl: string, imageId: string): PeerRequest => ({
  method: "GET",
  nodeUrl,
  path: peerPath(imageId),
});

/** A peer read of a cached image's kept record from the node at `nodeUrl`. */
export const peerRecordRead = (nodeUrl: string, imageId: string): PeerRequest => ({
  method: "GET",
  nodeUrl,
  path: peerRecordPath(imageId),
});

/** A token for `request` now: `v2:<unix time>:<HMAC-SHA256 of the form, method, node URL, path and time>`. */
export function peerToken(secret: string, request: PeerRequest, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `${VERSION}:${t}:${peerSignature(secret, request, t)}`;
}

/**
 * Whether a token was made with the secret for exactly this request, at most PEER_TOKEN_PAST_SECONDS ago and at
 * most PEER_TOKEN_FUTURE_SECONDS ahead of `now`.
 */
export function peerTokenValid(secret: string, request: PeerRequest, token: string | null, now = Date.now()): boolean {
  const m = /^v2:(\d{1,12}):([0-9a-f]{64})$/.exec(token ?? "");
  if (!m) return false;
  const t = Number(m[1]);
  const age = now / 1000 - t;
  if (age > PEER_TOKEN_PAST_SECONDS || age < -PEER_TOKEN_FUTURE_SECONDS) return false;
  const want = Buffer.from(peerSignature(secret, request, t), "hex");
  return timingSafeEqual(want, Buffer.from(m[2], "hex"));
}

/** The HMAC (hex) of one request at unix time `t`; the node URL loses its trailing slashes, the method is upper case. */
export function peerSignature(secret: string, request: PeerRequest, t: number): string {
  const text = [VERSION, request.method.toUpperCase(), request.nodeUrl.replace(/\/+$/, ""), request.path, t].join(
    "\n",
  );
  return createHmac("sha256", secret).update(text).digest("hex");
}
