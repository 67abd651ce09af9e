// Images from an existing Glance: metadata as the caller may see it, data read with the node's own service token.
import type { Identity } from "../auth/identity.ts";
import { type DomainError, upstreamFailed } from "../errors.ts";
import { upstreamRequestIdHeader } from "../request_context.ts";
import type { Image } from "./image.ts";
import type { ByteRange, ImageSource } from "./source.ts";
import type { UpstreamClient } from "./upstream_client.ts";
import { type Bandwidth, throttled } from "../streams/throttle.ts";

/** What UpstreamGlance needs. */
export interface UpstreamOptions {
  /** The upstream Glance API (e.g. http://glance.internal:9292), shared with the pass-through proxy. */
  client: UpstreamClient;
  /** Seconds an image's metadata is reused before asking upstream again (per caller token). */
  metadataCacheTime: number;
  /** The node's own token for background fills; undefined when upstream needs none. */
  serviceToken?: () => Promise<string>;
  /** upstream_bandwidth_limit: every image read from the upstream (fills, uncached downloads) shares it. */
  bandwidth?: Bandwidth;
}

const NOT_PROPERTIES = new Set(["self", "file", "schema", "locations", "direct_url", "stores"]);
const CORE = new Set([
  "id",
  "name",
  "status",
  "visibility",
  "owner",
  "size",
  "virtual_size",
  "checksum",
  "os_hash_algo",
  "os_hash_value",
  "disk_format",
  "container_format",
  "min_ram",
  "min_disk",
  "protected",
  "os_hidden",
  "tags",
  "created_at",
  "updated_at",
]);

/**
 * Trade-off of the metadata cache: a download checks upstream that the image still exists and is
 * active (as Glance's cache middleware does), but reuses an answer for metadataCacheTime seconds;
 * an image deleted or deactivated upstream can thus be served from the cache for at most that long.
 * Changes that go through the node drop the answers at once (invalidate, called by ImageChanges).
 */
export class UpstreamGlance implements ImageSource {
  private readonly metadata = new Map<string, { image: Image | undefined; until: number }>();
  /** Bumped by invalidate: an answer asked for before a change must not be kept after it. */
  private readonly generations = new Map<string, number>();
  /** Names of the images upstream answered for, whoever asked (the status page shows them next to ids). */
  private readonly names = new Map<string, string>();

  constructor(private readonly opts: UpstreamOptions) {}

  /** The image as `who` may see it (null: the node's service token); undefined on 404 or 403, else upstream_failed. */
  async find(id: string, who: Identity | null): Promise<Image | undefined> {
    const token = who ? who.token : await this.opts.serviceToken?.();
    const key = `${token ?? ""} ${id}`;
    const hit = this.metadata.get(key);
    if (hit && Date.now() < hit.until) return hit.image;
    const generation = this.generations.get(id) ?? 0;
    const res = await this.opts.client.fetch(`/v2/images/${id}`, { headers: this.headers(token) });
    let image: Image | undefined;
    if (res.ok) image = toImage((await res.json()) as Record<string, unknown>);
    if (image?.name) {
      if (this.names.size > 10_000) this.names.clear();
      this.names.set(id, image.name);
    } else {
      await res.body?.cancel();
      if (res.status !== 404 && res.status !== 403) throw upstreamError(res.status, `GET /v2/images/${id}`);
    }
    // queued, saving, importing... move on upstream without a request through us: never reused.
    const settled = !image || image.status === "active" || image.status === "deactivated";
    if (settled && this.opts.metadataCacheTime > 0 && (this.generations.get(id) ?? 0) === generation) {
      if (this.metadata.size > 10_000) this.metadata.clear();
      this.metadata.set(key, { image, until: Date.now() + this.opts.metadataCacheTime * 1000 });
    }
    return image;
  }

  /** The name upstream last gave the image, to anyone who asked through the node. */
  knownName(id: string): string | undefined {
    return this.names.get(id);
  }

  /** Forgets what we know of an image's metadata (a change to it went through us). */
  invalidate(id: string): void {
    for (const key of this.metadata.keys()) if (key.endsWith(` ${id}`)) this.metadata.delete(key);
    if (this.generations.size > 10_000) this.generations.clear();
    this.generations.set(id, (this.generations.get(id) ?? 0) + 1);
  }

  /** The data, or exactly the range asked: an upstream that answers otherwise fails the read, never passes wrong bytes. */
  async read(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const headers = this.headers(await this.opts.serviceToken?.());
    if (range) headers.Range = `bytes=${range.start}-${range.end}`;
    const what = `GET /v2/images/${image.id}/file`;
    const res = await this.opts.client.fetch(`/v2/images/${image.id}/file`, { headers });
    if (!res.body || res.status !== (range ? 206 : 200)) {
      await res.body?.cancel();
      if (range && res.status === 200) {
        throw upstreamFailed(
          `The upstream image service answered ${what} (${headers.Range}) with the whole image, not the range.`,
        );
      }
      if (this.opts.serviceToken && (res.status === 403 || res.status === 404)) {
        // The caller could see the image; the node reads its data with its own token, which may not.
        throw upstreamFailed(
          `The upstream image service answered ${res.status} to the node's own ${what}: the node's service user may not read this image's data.`,
        );
      }
      throw upstreamError(res.status, what);
    }
    if (range) {
      const got = res.headers.get("content-range") ?? "";
      const total = got.split("/")[1];
      const exact = got.startsWith(`bytes ${range.start}-${range.end}/`) &&
        (total === "*" || image.size === null || total === String(image.size));
      if (!exact) {
        await res.body.cancel();
        throw upstreamFailed(
          `The upstream image service answered ${what} (${headers.Range}) with Content-Range "${got}".`,
        );
      }
    }
    // The one place every byte of image data from the upstream passes: throttled here, shared by all reads.
    return this.opts.bandwidth ? throttled(res.body, this.opts.bandwidth) : res.body;
  }

  private headers(token: string | undefined): Record<string, string> {
    // The request this read is made for (if any) is named upstream by its request id.
    const headers: Record<string, string> = { "User-Agent": "glance-cache-node", ...upstreamRequestIdHeader() };
    if (token) headers["X-Auth-Token"] = token;
    return headers;
  }
}

function upstreamError(status: number, what: string): DomainError {
  return upstreamFailed(`The upstream image service answered ${status} to ${what}.`);
}

function toImage(doc: Record<string, unknown>): Image {
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (!CORE.has(k) && !NOT_PROPERTIES.has(k) && typeof v === "string") properties[k] = v;
  }
  return {
    id: String(doc.id),
    name: (doc.name as string | null) ?? null,
    status: doc.status as Image["status"],
    visibility: doc.visibility as Image["visibility"],
    owner: (doc.owner as string | null) ?? null,
    size: (doc.size as number | null) ?? null,
    virtual_size: (doc.virtual_size as number | null) ?? null,
    checksum: (doc.checksum as string | null) ?? null,
    os_hash_algo: (doc.os_hash_algo as string | null) ?? null,
    os_hash_value: (doc.os_hash_value as string | null) ?? null,
    disk_format: (doc.disk_format as string | null) ?? null,
    container_format: (doc.container_format as string | null) ?? null,
    min_ram: Number(doc.min_ram ?? 0),
    min_disk: Number(doc.min_disk ?? 0),
    protected: Boolean(doc.protected),
    os_hidden: Boolean(doc.os_hidden),
    tags: (doc.tags as string[]) ?? [],
    created_at: String(doc.created_at),
    updated_at: String(doc.updated_at),
    properties,
  };
}
