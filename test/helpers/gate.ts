// Gates on an image source for tests: ByteGate passes bytes only as far as the test allows; Gate holds chosen
// images after their first chunk until released. A fill is seen mid-way, never guessed.
import type { Image } from "../../src/images/image.ts";
import type { ImageSource } from "../../src/images/source.ts";

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

  /** From now on, streams pass chunks only until they have sent at least `bytes` (a gate opened before closes again). */
  hold(bytes: number): void {
    this.allowed = bytes;
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

/** Holds reads of chosen images after their first chunk until released: progress is observed, never guessed. */
export class Gate {
  private readonly held = new Map<string, () => void>();
  private readonly opened = new Map<string, Promise<void>>();
  /** Armed ids whose read has reached the gate. */
  readonly waiting = new Set<string>();

  arm(id: string): void {
    this.opened.set(id, new Promise<void>((r) => this.held.set(id, r)));
  }

  release(id: string): void {
    this.held.get(id)?.();
  }
  wrap(source: ImageSource): ImageSource {
    return {
      find: (id, who) => source.find(id, who),
      read: async (image: Image, range) => {
        const inner = (await source.read(image, range)).getReader();
        const gate = this.opened.get(image.id);
        let first = true;
        return new ReadableStream<Uint8Array>({
          pull: async (c) => {
            if (!first && gate) {
              this.waiting.add(image.id);
              await gate;
            }
            first = false;
            const { done, value } = await inner.read();
            if (done) c.close();
            else c.enqueue(value);
          },
          cancel: (r) => inner.cancel(r),
        });
      },
    };
  }
}
