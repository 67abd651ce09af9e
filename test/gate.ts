// A source whose streams pass bytes only as far as the test allows: fills held mid-way, then released.
import type { ImageSource } from "../src/images/source.ts";

export class ByteGate {
  private allowed: number;
  private waiters: (() => void)[] = [];

  /** By default the first chunk passes, so a fill has started and written something. */
  constructor(initial = 1) {
    this.allowed = initial;
  }

  /** Lets each stream pass chunks until it has sent at least `bytes`. */
  allow(bytes: number): void {
    this.allowed = Math.max(this.allowed, bytes);
    for (const wake of this.waiters.splice(0)) wake();
  }

  open(): void {
    this.allow(Infinity);
  }

  /** The source with its reads held by this gate; `held` picks which images are (default: all). */
  wrap(source: ImageSource, held: (id: string) => boolean = () => true): ImageSource {
    return {
      find: (id, who) => source.find(id, who),
      read: async (image, range) => {
        if (!held(image.id)) return source.read(image, range);
        const inner = (await source.read(image, range)).getReader();
        let sent = 0;
        return new ReadableStream<Uint8Array>({
          pull: async (c) => {
            while (sent >= this.allowed) await new Promise<void>((r) => this.waiters.push(r));
            const { done, value } = await inner.read();
            if (done) return c.close();
            sent += value.byteLength;
            c.enqueue(value);
          },
          cancel: (why) => inner.cancel(why),
        });
      },
    };
  }
}

/** A source whose streams fail after `limit` bytes. */
export function failingAfter(source: ImageSource, limit: number): ImageSource {
  return {
    find: (id, who) => source.find(id, who),
    read: async (image, range) => {
      const inner = (await source.read(image, range)).getReader();
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        pull: async (c) => {
          if (sent >= limit) {
            await inner.cancel();
            return c.error(new Error("source connection reset"));
          }
          const { done, value } = await inner.read();
          if (done) return c.close();
          sent += value.byteLength;
          c.enqueue(value);
        },
      });
    },
  };
}
