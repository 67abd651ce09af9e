// Bounds on uploads into the embedded store: how many run at once (overall, per project), and how long one may stall.
import { tooLarge } from "../errors.ts";

/**
 * Upload slots: one per upload in progress, at most `max` in all and `perProject` per project. A refusal is
 * 413, as Glance answers an upload beyond a project's `image_count_uploading` limit (oslo.limit's
 * ProjectOverLimit, rendered as HTTPRequestEntityTooLarge by the upload controller).
 */
export class UploadSlots {
  private inProgress = 0;
  private readonly byProject = new Map<string, number>();

  constructor(
    readonly max: number,
    readonly perProject: number,
  ) {}

  /** Takes a slot for an upload into an image owned by `project`; the function it returns gives it back (once). */
  take(project: string | null): () => void {
    const key = project ?? "";
    const mine = this.byProject.get(key) ?? 0;
    if (mine >= this.perProject) {
      throw tooLarge(
        `Project ${project} is over a limit for [Resource image_count_uploading is over limit of ${this.perProject} due to current usage ${mine} and delta 1]`,
      );
    }
    if (this.inProgress >= this.max) {
      throw tooLarge(`This node has ${this.inProgress} image uploads in progress, its limit; try again later.`);
    }
    this.inProgress++;
    this.byProject.set(key, mine + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.inProgress--;
      const left = (this.byProject.get(key) ?? 1) - 1;
      if (left > 0) this.byProject.set(key, left);
      else this.byProject.delete(key);
    };
  }

  /** Uploads in progress now. */
  get count(): number {
    return this.inProgress;
  }
}

/**
 * The body, failing with stalled() (and letting go of the client's stream) when no byte comes for
 * `seconds` while a byte is asked for. Time the reader spends elsewhere (writing to disk) does not count.
 */
export function stallGuard(
  body: ReadableStream<Uint8Array>,
  seconds: number,
  stalled: () => Error,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(stalled()), seconds * 1000);
      });
      try {
        const { done, value } = await Promise.race([reader.read(), timeout]);
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        reader.cancel(err).catch(() => {});
        controller.error(err);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}
