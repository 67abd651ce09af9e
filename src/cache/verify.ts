// Which digest an image's bytes are checked against: its multihash when this runtime can compute it, else its md5.
import type { Image } from "../images/image.ts";
import { runtimeHashName } from "../streams/hasher.ts";

export interface Digest {
  /** Glance's (hashlib) name, as reported in events and logs. */
  algo: string;
  /** node:crypto's name for it. */
  runtimeAlgo: string;
  hex: string;
}

/** The size is always checked besides. An os_hash_algo this runtime lacks falls back to the md5 `checksum`. */
export function expectedDigest(image: Image, log?: (msg: string) => void): Digest | undefined {
  if (image.os_hash_algo && image.os_hash_value) {
    const runtimeAlgo = runtimeHashName(image.os_hash_algo);
    if (runtimeAlgo) return { algo: image.os_hash_algo, runtimeAlgo, hex: image.os_hash_value.toLowerCase() };
    log?.(
      `image ${image.id}: os_hash_algo ${JSON.stringify(image.os_hash_algo)} is not available here; verifying size${image.checksum ? " and md5 checksum" : " only"}`,
    );
  }
  if (image.checksum) return { algo: "md5", runtimeAlgo: "md5", hex: image.checksum.toLowerCase() };
  return undefined;
}
