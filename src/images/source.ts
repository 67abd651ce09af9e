// What the cache needs from wherever images live: metadata lookups and a byte stream of the data.
import type { Identity } from "../auth/identity.ts";
import type { Image } from "./image.ts";

export interface ByteRange {
  start: number;
  /** inclusive */
  end: number;
}

export interface ImageSource {
  /** The image as `who` may see it (null: the node's own service identity, which sees all), or undefined. */
  find(id: string, who: Identity | null): Promise<Image | undefined>;
  /** The image's data, or the given range of it. */
  read(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>>;
}
