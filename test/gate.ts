// A gate on an image source: reads of armed images stop after their first chunk until released, so a test sees a fill mid-way.
import type { Image } from "../src/images/image.ts";
import type { ImageSource } from "../src/images/source.ts";

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

