// Images from an existing Glance: metadata as the caller may see it, data read with the node's own service token.
import type { Identity } from "../auth/identity.ts";
import { type DomainError, upstreamFailed } from "../errors.ts";
import { upstreamRequestIdHeader } from "../request_context.ts";
import type { Image } from "./image.ts";
import type { ByteRange, ImageSource } from "./source.ts";

export interface UpstreamOptions {
  /** The upstream Glance API, e.g. http://glance.internal:9292 */
  url: string;
  /** Seconds an image's metadata is reused before asking upstream again (per caller token). */
  metadataCacheTime: number;
  /** The node's own token for background fills; undefined when upstream needs none. */
  serviceToken?: () => Promise<string>;
}

const NOT_PROPERTIES = new Set(["self", "file", "schema", "locations", "direct_url", "stores"]);
const CORE = new Set([
  "id", "name", "status", "visibility", "owner", "size", "virtual_size", "checksum", "os_hash_algo",
  "os_hash_value", "disk_format", "container_format", "min_ram", "min_disk", "protected", "os_hidden",
  "tags", "created_at", "updated_at",
]);

/**
 * Trade-off of the metadata cache: a download checks upstream that the image still exists and is
 * active (as Glance's cache middleware does), but reuses an answer for metadataCacheTime seconds;
 * an image deleted or deactivated upstream can thus be served from the cache for at most that long.
 */
export class UpstreamGlance implements ImageSource {
  private readonly base: string;
  private readonly metadata = new Map<string, { image: Image | undefined; until: number }>();

  constructor(private readonly opts: UpstreamOptions) {
    this.base = opts.url.replace(/\/+$/, "");
  }

  async find(id: string, who: Identity | null): Promise<Image | undefined> {
    const token = who ? who.token : await this.opts.serviceToken?.();
    const key = `${token ?? ""} ${id}`;
    const hit = this.metadata.get(key);
    if (hit && Date.now() < hit.until) return hit.image;
    const res = await fetch(`${this.base}/v2/images/${id}`, { headers: this.headers(token) });
    let image: Image | undefined;
    if (res.ok) image = toImage((await res.json()) as Record<string, unknown>);
    else {
      await res.body?.cancel();
      if (res.status !== 404 && res.status !== 403) throw upstreamError(res.status, `GET /v2/images/${id}`);
    }
    if (this.metadata.size > 10_000) this.metadata.clear();
    this.metadata.set(key, { image, until: Date.now() + this.opts.metadataCacheTime * 1000 });
    return image;
  }

  /** Forgets what we know of an image (after a delete or deactivate went through us). */
  invalidate(id: string): void {
    for (const key of this.metadata.keys()) if (key.endsWith(` ${id}`)) this.metadata.delete(key);
  }

  async read(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const headers = this.headers(await this.opts.serviceToken?.());
    if (range) headers.Range = `bytes=${range.start}-${range.end}`;
    const res = await fetch(`${this.base}/v2/images/${image.id}/file`, { headers });
    if (!(res.status === 200 || res.status === 206) || !res.body) {
      await res.body?.cancel();
      throw upstreamError(res.status, `GET /v2/images/${image.id}/file`);
    }
    return res.body;
  }

  private headers(token: string | undefined): Record<string, string> {
    // The request this read is made for (if any) is named upstream by its request id.
    return { ...upstreamRequestIdHeader(), ...(token ? { "X-Auth-Token": token } : {}) };
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
