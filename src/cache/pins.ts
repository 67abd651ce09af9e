// Pinned images: kept in the cache whatever the eviction rules say, listed in a durable file of the cache directory.
import { readFile } from "node:fs/promises";
import { conflict } from "../errors.ts";
import { type Image, isImageId } from "../images/image.ts";
import { writeRecord } from "../images/record_files.ts";
import type { EvictionRules } from "./eviction.ts";

/** A pin as GET /v2/x-cache-node/pins lists it (without `cached`, which the cache adds). */
export interface Pin {
  image_id: string;
  /** Seconds since the epoch. */
  pinned_at: number;
  /** The image's size when it was pinned, bytes: pinned images together never exceed the cap. */
  size: number;
}

/**
 * The pins, in memory and in `pins.json` (written whole to a temporary file of its own, fsynced, renamed), so
 * they survive restarts. Writes are chained: the file always ends with the latest set.
 */
export class Pins {
  private readonly pins = new Map<string, Pin>();
  private chain: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string) {}

  /** Reads the pins file (absent: no pins; unreadable: an error, as a broken index would be). */
  static async load(file: string): Promise<Pins> {
    const pins = new Pins(file);
    const text = await readFile(file, "utf8").catch((err) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    const list = text === undefined ? [] : (JSON.parse(text) as Pin[]);
    for (const p of list) if (isImageId(p.image_id)) pins.pins.set(p.image_id, p);
    return pins;
  }

  /** Is the image pinned? */
  has(id: string): boolean {
    return this.pins.has(id);
  }

  /** Every pin, oldest first. */
  list(): Pin[] {
    return [...this.pins.values()].sort((a, b) => a.pinned_at - b.pinned_at);
  }

  /** Bytes of the pinned images, `except` one. */
  bytes(except?: string): number {
    let n = 0;
    for (const p of this.pins.values()) if (p.image_id !== except) n += p.size;
    return n;
  }

  /** How many images are pinned, and their bytes. */
  totals(): { pinnedImages: number; pinnedBytes: number } {
    return { pinnedImages: this.pins.size, pinnedBytes: this.bytes() };
  }

  /** 409 unless the image may be cached and the pinned images, it included, fit in the cache. */
  check(image: Image, rules: EvictionRules): void {
    const refusal = rules.refusal(image);
    if (refusal) throw conflict(`Image ${image.id} cannot be pinned: ${refusal}.`);
    const pinned = this.bytes(image.id) + image.size!;
    if (pinned > rules.maxSize) {
      throw conflict(
        `Pinning ${image.id} would make the pinned images ${pinned} bytes, larger than image_cache_max_size (${rules.maxSize}).`,
      );
    }
  }

  /** Pins the image (kept as it was if pinned already); resolves once the file is durable, true if it is new. */
  async add(image: Image): Promise<boolean> {
    const was = this.pins.get(image.id);
    this.pins.set(image.id, { image_id: image.id, pinned_at: was?.pinned_at ?? Date.now() / 1000, size: image.size! });
    await this.save();
    return !was;
  }

  /** Unpins; false when it was not pinned. The removal is durable once the returned promise resolves. */
  async remove(id: string): Promise<boolean> {
    if (!this.pins.delete(id)) return false;
    await this.save();
    return true;
  }

  /** Unpins everything. */
  async clear(): Promise<void> {
    this.pins.clear();
    await this.save();
  }

  private save(): Promise<void> {
    const run = this.chain.then(() => writeRecord(this.file, this.list()));
    this.chain = run.catch(() => {});
    return run;
  }
}
