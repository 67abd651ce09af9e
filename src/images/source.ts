// What the cache needs from wherever images live: metadata lookups and a byte stream of the data.
import type { FileHandle } from "node:fs/promises";
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
  /**
   * Optional, for a source whose data are local files (the embedded store): an open handle on the
   * whole image's data, which the caller reads with its own buffers and closes. A fill then copies
   * without a stream on its hot path. Counts as one read of the source, like read().
   */
  openData?(image: Image): Promise<FileHandle>;
}
