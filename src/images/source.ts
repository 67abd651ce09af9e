// What the cache needs from wherever images live: metadata lookups and a byte stream of the data.
import type { Identity } from "../auth/identity.ts";
import type { Image } from "./image.ts";

/** A byte range of an image's data, as an HTTP Range names it: both ends inclusive. */
export interface ByteRange {
  start: number;
  /** inclusive */
  end: number;
}

/** Where images live (the embedded store, an upstream Glance): what a new source implements. */
export interface ImageSource {
  /** The image as `who` may see it (null: the node's own service identity, which sees all), or undefined. */
  find(id: string, who: Identity | null): Promise<Image | undefined>;
  /** The image's data, or the given range of it. */
  read(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>>;
  /** The image's name as the node last saw it, without asking anyone (for the status page and the CLI). */
  knownName?(id: string): string | undefined;
}
