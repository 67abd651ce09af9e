// Peer requests carry an HMAC of the image id and a timestamp under the fleet's shared secret, never the secret itself.
import { createHmac, timingSafeEqual } from "node:crypto";

/** The header a peer read carries its token in. */
export const PEER_AUTH_HEADER = "X-Fleet-Peer-Auth";
/** How far a peer's clock (and the request's age) may be off. */
const WINDOW_SECONDS = 300;

/** A token for reading `imageId` from a peer now: the time and an HMAC of the id and the time under the secret. */
export function peerToken(secret: string, imageId: string, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `${t}:${sign(secret, imageId, t)}`;
}

/** Whether a peer's token was made with the secret for this image, within the allowed clock difference. */
export function peerTokenValid(secret: string, imageId: string, token: string | null, now = Date.now()): boolean {
  const m = /^(\d{1,12}):([0-9a-f]{64})$/.exec(token ?? "");
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(now / 1000 - t) > WINDOW_SECONDS) return false;
  const want = Buffer.from(sign(secret, imageId, t), "hex");
  return timingSafeEqual(want, Buffer.from(m[2], "hex"));
}

function sign(secret: string, imageId: string, t: number): string {
  return createHmac("sha256", secret).update(`${imageId}\n${t}`).digest("hex");
}
