// An ImageSource that reads an image from a peer of the same site holding (or filling) it, and from the real source otherwise.
import type { Image } from "../images/image.ts";
import { type KeptRecord, parseKept } from "../images/kept_record.ts";
import type { ByteRange, ImageSource } from "../images/source.ts";
import type { Fetch } from "../platform/tls_fetch.ts";
import { PEER_AUTH_HEADER, peerPath, peerRead, peerRecordPath, peerRecordRead, peerToken } from "./peer_auth.ts";

/** Counts of a node's whole-image reads, by where they came from (for /metrics and heartbeats). */
export interface PeerReads {
  upstreamReads: number;
  peerReads: number;
  peerFailures: number;
}

/** What the peer source needs: where the peers are, the secret to sign with, and a log. */
export interface PeerDeps {
  /** Peer URLs to try, best first; [] when none holds the image. */
  peers(imageId: string): Promise<string[]>;
  secret: string;
  log: (msg: string) => void;
  /** What peer reads go out with (node:https with [DEFAULT] ca_file for https peers); default global fetch. */
  fetch?: Fetch;
}

/**
 * Whole-image reads try the peers; if a peer fails before the end, the stream goes on from the
 * real source at the byte reached. The cache verifies size and checksum as for any source, so a
 * peer sending wrong bytes fails the fill and nothing is kept.
 */
export class PeerSource implements ImageSource {
  readonly reads: PeerReads = { upstreamReads: 0, peerReads: 0, peerFailures: 0 };
  /**
   * Images this node is reading from a peer (or looking for one): it does not serve their fills in
   * progress to peers, so two nodes filling one image at once never wait on each other.
   */
  readonly viaPeer = new Set<string>();

  constructor(
    private readonly real: ImageSource,
    private readonly deps: PeerDeps | undefined,
  ) {}

  find(id: string, who: Parameters<ImageSource["find"]>[1]): Promise<Image | undefined> {
    return this.real.find(id, who);
  }

  async read(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    if (range || !this.deps || image.size === null || this.viaPeer.has(image.id)) return this.upstream(image, range);
    this.viaPeer.add(image.id);
    const peer = await this.openPeer(image).catch(() => undefined);
    if (!peer) {
      this.viaPeer.delete(image.id);
      return this.upstream(image);
    }
    return this.withFallback(image, peer);
  }

  /** The kept record of a cached image from the first peer of this site that has one (the upstream unreachable). */
  async keptRecord(id: string): Promise<KeptRecord | undefined> {
    const deps = this.deps;
    if (!deps) return undefined;
    for (const url of await deps.peers(id).catch(() => [] as string[])) {
      try {
        const res = await (deps.fetch ?? fetch)(url + peerRecordPath(id), {
          headers: { [PEER_AUTH_HEADER]: peerToken(deps.secret, peerRecordRead(url, id)) },
          redirect: "manual",
          signal: AbortSignal.timeout(10_000),
        });
        const record = res.ok ? parseKept(await res.json()) : void (await res.body?.cancel());
        if (record?.id === id) return record;
      } catch (err) {
        deps.log(`fleet: peer ${url} gave no kept record of ${id}: ${(err as Error).message}`);
      }
    }
    return undefined;
  }

  private upstream(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    this.reads.upstreamReads++;
    return this.real.read(image, range);
  }

  private async openPeer(image: Image): Promise<{ url: string; body: ReadableStream<Uint8Array> } | undefined> {
    const deps = this.deps!;
    let peers: string[];
    try {
      peers = await deps.peers(image.id);
    } catch (err) {
      deps.log(`fleet: no peer lookup for ${image.id} (${(err as Error).message}); reading the source`);
      return undefined;
    }
    for (const url of peers) {
      // The timeout covers the answer's headers only: the body of a large image takes what it takes.
      const aborter = new AbortController();
      const timer = setTimeout(() => aborter.abort(new Error("no answer within 10 s")), 10_000);
      try {
        // Signed for this peer alone; a redirect is a failed peer, never followed with the token.
        const res = await (deps.fetch ?? fetch)(url + peerPath(image.id), {
          headers: { [PEER_AUTH_HEADER]: peerToken(deps.secret, peerRead(url, image.id)) },
          signal: aborter.signal,
          redirect: "manual",
        });
        clearTimeout(timer);
        if (res.ok && res.body && res.headers.get("content-length") === String(image.size)) {
          this.reads.peerReads++;
          return { url, body: res.body };
        }
        await res.body?.cancel();
        const redirect = res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400);
        deps.log(
          `fleet: peer ${url} answered ${res.status || "a redirect"} for ${image.id}${
            redirect ? " (a redirect: not followed)" : ""
          }`,
        );
      } catch (err) {
        clearTimeout(timer);
        deps.log(`fleet: peer ${url} failed for ${image.id}: ${(err as Error).message}`);
      }
      this.reads.peerFailures++;
    }
    return undefined;
  }

  private withFallback(
    image: Image,
    peer: { url: string; body: ReadableStream<Uint8Array> },
  ): ReadableStream<Uint8Array> {
    let reader = peer.body.getReader();
    let pos = 0;
    let fromPeer = true;
    const size = image.size!;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          for (;;) {
            try {
              const { done, value } = await reader.read();
              if (done) {
                if (fromPeer && pos < size) throw new Error(`peer ended at byte ${pos} of ${size}`);
                this.viaPeer.delete(image.id);
                controller.close();
                return;
              }
              pos += value.byteLength;
              controller.enqueue(value);
              return;
            } catch (err) {
              if (!fromPeer) throw err;
              fromPeer = false;
              this.viaPeer.delete(image.id);
              this.reads.peerFailures++;
              this.deps?.log(
                `fleet: peer ${peer.url} failed at byte ${pos} of ${image.id} (${
                  (err as Error).message
                }); going on from the source`,
              );
              reader.cancel().catch(() => {});
              if (pos >= size) {
                controller.close();
                return;
              }
              reader = (await this.upstream(image, { start: pos, end: size - 1 })).getReader();
            }
          }
        },
        cancel: (reason) => {
          this.viaPeer.delete(image.id);
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }
}
