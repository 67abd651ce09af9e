// The embedded image store: image records as JSON files and image data as plain files under one directory.
import { randomUUID } from "node:crypto";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Identity } from "../auth/identity.ts";
import { conflict } from "../errors.ts";
import { COPY_CHUNK, gatheredChunks } from "../streams/chunks.ts";
import { fileStream, writeAll } from "../streams/files.ts";
import { Hasher } from "../streams/hasher.ts";
import { type FileWriter, openWriter } from "../platform/file_writer.ts";
import { SideHasher } from "../streams/side_hasher.ts";
import { HASH_THREAD_PAYS } from "../platform/hash_thread.ts";
import { canSee, glanceTime, type Image, isImageId } from "./image.ts";
import { KeyedExclusion, readRecords, type UnreadableRecord, writeRecord } from "./record_files.ts";
import type { ByteRange, ImageSource } from "./source.ts";

/**
 * The image source when there is no upstream Glance, and the store behind the images API: records held in memory
 * once opened, each saved as it changes; an image's data is written only by upload.
 */
export class EmbeddedStore implements ImageSource {
  /** Saves, deletes and upload steps of one image run one after the other. */
  private readonly exclusion = new KeyedExclusion();
  /** Uploads in progress, settled or not: close() waits for them. */
  private readonly uploading = new Set<Promise<void>>();

  private constructor(
    private readonly dir: string,
    private readonly images: Map<string, Image>,
    /** Record files found unreadable at start and moved aside (reported by /healthcheck?detailed and /metrics). */
    readonly unreadable: UnreadableRecord[],
  ) {}

  /**
   * Opens the directory (creating it) and loads its records; an upload a crash cut short is queued again. A
   * record that cannot be read is moved aside and logged: the node starts without that image.
   */
  static async open(dir: string, log: (msg: string) => void = () => {}): Promise<EmbeddedStore> {
    await mkdir(dir, { recursive: true });
    const wanted = (name: string) => name.endsWith(".json") && isImageId(name.slice(0, -5));
    const { records, unreadable } = await readRecords<Image>(dir, wanted);
    const images = new Map<string, Image>();
    for (const image of records) {
      // An upload cut short by a crash never completed: the image is back to waiting for data.
      if (image.status === "saving") image.status = "queued";
      images.set(image.id, image);
    }
    for (const u of unreadable) {
      log(`image record ${u.file} could not be read (${u.error}): moved aside to ${u.movedTo}`);
    }
    return new EmbeddedStore(dir, images, unreadable);
  }

  /** The image as `who` may see it (null: the node itself, which sees all), or undefined. */
  async find(id: string, who: Identity | null): Promise<Image | undefined> {
    const image = this.images.get(id);
    if (!image || (who && !canSee(image, who))) return undefined;
    return image;
  }

  /** The image's data, or a range of it; an image without data fails (ENOENT). */
  async read(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    return fileStream(this.dataPath(image.id), range?.start, range?.end);
  }

  /** The image's name from its record. */
  knownName(id: string): string | undefined {
    return this.images.get(id)?.name ?? undefined;
  }

  /** Every image, whoever may see it: the caller filters. */
  all(): Image[] {
    return [...this.images.values()];
  }

  /** A new queued image with Glance's defaults under `fields` (a new id unless given); saved before it returns. */
  async create(fields: Partial<Image> & { owner: string | null }): Promise<Image> {
    const now = glanceTime();
    const image: Image = {
      id: fields.id ?? randomUUID(),
      name: null,
      status: "queued",
      visibility: "shared",
      size: null,
      virtual_size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      disk_format: null,
      container_format: null,
      min_ram: 0,
      min_disk: 0,
      protected: false,
      os_hidden: false,
      tags: [],
      properties: {},
      ...fields,
      created_at: now,
      updated_at: now,
    };
    return this.exclusion.run(image.id, () => this.write(image));
  }

  /** Writes the record whole (durably, then renamed over the old one) and stamps updated_at. */
  save(image: Image): Promise<void> {
    return this.exclusion.run(image.id, async () => void (await this.write({ ...image })));
  }

  /**
   * Changes a record: `change` edits a copy of the current one (it may throw to refuse: nothing changes), the
   * copy is saved, and only then replaces the record in memory. Changes of one image apply one after the other,
   * each to the result of the one before. Undefined when the image is gone.
   */
  update(id: string, change: (draft: Image) => void): Promise<Image | undefined> {
    return this.exclusion.run(id, async () => {
      const current = this.images.get(id);
      if (!current) return undefined;
      const draft = structuredClone(current);
      change(draft);
      return this.write(draft);
    });
  }

  /** Removes the record, its data and an upload in progress; an upload still running then leaves nothing. */
  delete(id: string): Promise<void> {
    return this.exclusion.run(id, async () => {
      this.images.delete(id);
      await rm(this.metaPath(id), { force: true });
      await rm(this.dataPath(id), { force: true });
      await rm(`${this.dataPath(id)}.upload`, { force: true });
    });
  }

  private async write(image: Image): Promise<Image> {
    image.updated_at = glanceTime();
    await writeRecord(this.metaPath(image.id), image);
    this.images.set(image.id, image);
    return image;
  }

  /**
   * Streams the body to disk while hashing it, then makes the image active. Past sizeCap bytes the upload
   * fails with limit.tooLarge() and leaves nothing behind: the image is queued again.
   */
  upload(
    image: Image,
    body: ReadableStream<Uint8Array>,
    limit: { sizeCap: number; tooLarge: () => Error } = { sizeCap: Infinity, tooLarge: () => new Error("too large") },
  ): Promise<Image> {
    const run = this.storeUpload(image, body, limit);
    const settled = run.then(() => {}, () => {});
    this.uploading.add(settled);
    void settled.then(() => this.uploading.delete(settled));
    return run;
  }

  /** Waits for the uploads in progress to end (their bodies end with their connections): none writes after. */
  async close(): Promise<void> {
    await Promise.all([...this.uploading]);
  }

  private async storeUpload(
    image: Image,
    body: ReadableStream<Uint8Array>,
    limit: { sizeCap: number; tooLarge: () => Error },
  ): Promise<Image> {
    const id = image.id;
    const tmp = `${this.dataPath(id)}.upload`;
    await this.update(id, (d) => {
      if (d.status !== "queued") throw conflict(`Image status transition from ${d.status} to saving is not allowed`);
      d.status = "saving";
    });
    const fh = await openWriter(tmp, "w");
    let stored: Stored;
    try {
      stored = await storeBody(body, fh, limit);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      await this.update(id, (d) => void (d.status = "queued"));
      throw err;
    }
    await fh.close();
    const done = await this.exclusion.run(id, async () => {
      const current = this.images.get(id);
      if (!current) return undefined; // deleted while uploading
      await rename(tmp, this.dataPath(id));
      return this.write({
        ...structuredClone(current),
        status: "active",
        size: stored.size,
        virtual_size: current.disk_format === "raw" ? stored.size : null,
        checksum: stored.md5,
        os_hash_algo: "sha512",
        os_hash_value: stored.sha512,
      });
    });
    if (!done) await rm(tmp, { force: true });
    return done ?? image;
  }

  private metaPath(id: string): string {
    if (!isImageId(id)) throw new Error(`refusing a path for id ${JSON.stringify(id)}`);
    return join(this.dir, `${id}.json`);
  }

  private dataPath(id: string): string {
    if (!isImageId(id)) throw new Error(`refusing a path for id ${JSON.stringify(id)}`);
    return join(this.dir, `${id}.data`);
  }
}

const HASH_SLICE = 1 << 20;

interface Stored {
  size: number;
  md5: string;
  sha512: string;
}

/**
 * The body in COPY_CHUNK (2 MiB) chunks, each written (off the main thread) while the main thread computes its
 * sha512 and, for a body of more than one chunk and where it pays (HASH_THREAD_PAYS), a SideHasher on the shared hash pool its md5: the two digests Glance
 * computes one after the other run side by side on two cores. The next chunk is gathered meanwhile.
 * Past `cap` bytes the body is cancelled and the upload fails with tooLarge().
 */
async function storeBody(
  body: ReadableStream<Uint8Array>,
  fh: FileWriter,
  limit: { sizeCap: number; tooLarge: () => Error },
): Promise<Stored> {
  const buffers = HASH_THREAD_PAYS ? SideHasher.sharedBuffers(COPY_CHUNK) : undefined;
  const chunks = gatheredChunks(body, COPY_CHUNK, buffers);
  const sha512 = new Hasher(["sha512"]);
  // a body that fits one chunk is not worth a thread's start
  const md5Here = new Hasher(["md5"]);
  let md5Beside: SideHasher | undefined;
  try {
    let pos = 0;
    for (let chunk = await chunks.next(); chunk; chunk = await chunks.next()) {
      if (pos + chunk.byteLength > limit.sizeCap) throw limit.tooLarge();
      if (buffers && pos === 0 && chunk.byteLength === COPY_CHUNK) md5Beside = new SideHasher("md5", buffers);
      const md5Done = md5Beside ? md5Beside.update(chunk) : md5Here.update(chunk);
      md5Done?.catch(() => {}); // awaited below, unless the write failed first
      // 1 MiB at a time: the bytes the hash just read are still in the CPU's cache when the write copies them
      for (let off = 0; off < chunk.byteLength; off += HASH_SLICE) {
        const slice = chunk.subarray(off, Math.min(off + HASH_SLICE, chunk.byteLength));
        const landed = writeAll(fh, slice);
        sha512.update(slice);
        await landed;
        pos += slice.byteLength;
      }
      // the chunk's buffer is gathered into again after the next call: the side hash must be done with it
      await md5Done;
    }
    const md5 = md5Beside ? await md5Beside.digest() : md5Here.digest().md5;
    return { size: pos, md5, sha512: sha512.digest().sha512 };
  } catch (err) {
    await chunks.close(err);
    throw err;
  } finally {
    await md5Beside?.close();
  }
}
