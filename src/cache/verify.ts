// Which digest an image's bytes are checked against: its multihash when this runtime can compute it, else its md5.
import type { Image } from "../images/image.ts";
import { runtimeHashName } from "../streams/hasher.ts";

/** A digest to check an image's bytes against, in Glance's and the runtime's names. */
export interface Digest {
  /** Glance's (hashlib) name, as reported in events and logs. */
  algo: string;
  /** node:crypto's name for it. */
  runtimeAlgo: string;
  /** The expected value, lower-case hex. */
  hex: string;
}

/**
 * The operator's choice of the digest a fill is verified with ([glance_cache_node] verify_hash):
 * - os_hash_value (default): the image's multihash (sha512 from Glance), collision-resistant;
 * - checksum: the md5 `checksum`, cheaper to compute, but md5 collisions are easy to make, so a
 *   source that can be made to serve crafted bytes is caught only by the size check.
 * Either falls back to the other when the image lacks it.
 */
export type VerifyHash = "os_hash_value" | "checksum";
/** Every choice of VerifyHash, for option parsing. */
export const VERIFY_HASHES: readonly VerifyHash[] = ["os_hash_value", "checksum"];

/** The size is always checked besides. An os_hash_algo this runtime lacks falls back to the md5 `checksum`. */
export function expectedDigest(
  image: Image,
  log?: (msg: string) => void,
  prefer: VerifyHash = "os_hash_value",
): Digest | undefined {
  if (prefer === "checksum" && image.checksum) {
    return { algo: "md5", runtimeAlgo: "md5", hex: image.checksum.toLowerCase() };
  }
  if (image.os_hash_algo && image.os_hash_value) {
    const runtimeAlgo = runtimeHashName(image.os_hash_algo);
    if (runtimeAlgo) return { algo: image.os_hash_algo, runtimeAlgo, hex: image.os_hash_value.toLowerCase() };
    log?.(
      `image ${image.id}: os_hash_algo ${JSON.stringify(image.os_hash_algo)} is not available here; verifying size${
        image.checksum ? " and md5 checksum" : " only"
      }`,
    );
  }
  if (image.checksum) return { algo: "md5", runtimeAlgo: "md5", hex: image.checksum.toLowerCase() };
  return undefined;
}
