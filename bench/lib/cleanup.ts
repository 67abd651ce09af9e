// What a benchmark starts is stopped again: cleanups run in reverse order at the end, on error and on Ctrl-C.
import process from "node:process";

const cleanups: { name: string; fn: () => Promise<void> }[] = [];
let interrupted = false;

/** Registers a cleanup; the returned function runs it now (once) and unregisters it. */
export function onCleanup(name: string, fn: () => Promise<void>): () => Promise<void> {
  const entry = { name, fn };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await fn();
  };
}

export async function cleanupAll(log: (msg: string) => void): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c.fn();
    } catch (err) {
      log(`cleanup ${c.name}: ${err instanceof Error ? err.message : err}`);
    }
  }
}

export const wasInterrupted = () => interrupted;

/** On SIGINT/SIGTERM/SIGHUP: run every cleanup, then exit 130. */
export function cleanupOnSignals(log: (msg: string) => void): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      log(`${sig}: stopping everything this bench started`);
      void cleanupAll(log).finally(() => process.exit(130));
    });
  }
}
