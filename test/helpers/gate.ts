// The one way tests hold one side of a race: a Gate it waits at until the test opens it, and image sources whose
// reads wait at gates (per image after the first chunk, or past a byte count). A fill is seen mid-way, never guessed.
import type { Image } from "../../src/images/image.ts";
import type { ByteRange, ImageSource } from "../../src/images/source.ts";

/**
 * One side of a race waits at pass() until the test calls open(); `entered` tells the test it got there.
 * Fake servers hold a request the same way (`await gate.pass()` in the handler).
 */
export class Gate {
  #release!: () => void;
  #arrived!: () => void;
  #isOpen = false;
  /** Settles when the test opens the gate. */
  readonly opened: Promise<void> = new Promise<void>((r) => (this.#release = r));
  /** Settles when the first caller reaches pass(): the held side is where the test wants it. */
  readonly entered: Promise<void> = new Promise<void>((r) => (this.#arrived = r));

  /** Whether open() has been called: code that must not wait again after the gate opened asks this. */
  get isOpen(): boolean {
    return this.#isOpen;
  }

  /** Waits here until the gate is open (at once if it already is), telling `entered` on the way. */
  pass(): Promise<void> {
    this.#arrived();
    return this.opened;
  }

  /** Lets every waiter through, now and later; a field so it can be handed out (`close: gate.open`). */
  readonly open = (): void => {
    this.#isOpen = true;
    this.#release();
  };
}

/** The stream gives its first chunk, then waits at the gate before each next one. */
export function holdAfterFirstChunk(stream: ReadableStream<Uint8Array>, gate: Gate): ReadableStream<Uint8Array> {
  const inner = stream.getReader();
  let first = true;
  return new ReadableStream<Uint8Array>({
    pull: async (c) => {
      if (!first) await gate.pass();
      first = false;
      const { done, value } = await inner.read();
      if (done) c.close();
      else c.enqueue(value);
    },
    cancel: (why) => inner.cancel(why),
  });
}

/** The source with the reads `gateFor` names a gate for held after their first chunk (a fill has started). */
export function holdReads(
  source: ImageSource,
  gateFor: (image: Image, range?: ByteRange) => Gate | undefined,
): ImageSource {
  return {
    find: (id, who) => source.find(id, who),
    read: async (image, range) => {
      const stream = await source.read(image, range);
      const gate = gateFor(image, range);
      return gate ? holdAfterFirstChunk(stream, gate) : stream;
    },
  };
}

/** A Gate per image: reads of an armed image are held after their first chunk until the test releases it. */
export class ImageGates {
  readonly #gates = new Map<string, Gate>();
  /** Armed ids whose read has reached its gate. */
  readonly waiting = new Set<string>();

  /** Holds the next reads of `id` (until release); returns its gate, whose `entered` says a read got there. */
  arm(id: string): Gate {
    const gate = new Gate();
    this.#gates.set(id, gate);
    void gate.entered.then(() => this.waiting.add(id));
    return gate;
  }

  /** Lets the held reads of `id` go on, and every later one. */
  release(id: string): void {
    this.#gates.get(id)?.open();
  }

  /** The source with its reads of armed images held. */
  wrap(source: ImageSource): ImageSource {
    return holdReads(source, (image) => this.#gates.get(image.id));
  }
}

/** Passes bytes of a source's streams only as far as the test allows: progress in steps the test chooses. */
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

  /** Lets every stream run to its end. */
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

/** A source whose streams fail after `limit` bytes: a source connection reset mid-fill. */
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
