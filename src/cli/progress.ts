// Progress of images being cached: bars on a terminal (cli-progress), plain lines otherwise.
import cliProgress from "cli-progress";
import { formatBytes, formatDuration, formatRate } from "./format.ts";

/** An image's state (or a node's part's) as a progress view shows it. */
export type RowState = "queued" | "caching" | "cached" | "failed";

/** One line of a progress view. */
export interface Row {
  /** The image id, or for a fleet job the node's URL (padded to line up). */
  id: string;
  state: RowState;
  /** Bytes written so far. */
  bytes: number;
  /** The size expected, null when unknown. */
  total: number | null;
  /** bytes per second, 0 when unknown */
  rate: number;
  /** A word or two after the state: the error, or hits of a cached image. */
  note?: string;
}

/** Progress as the CLI shows it: terminalView on a terminal, lineView in a pipe. */
export interface ProgressView {
  /** The rows as they are now; a row missing from `rows` is removed from the view. */
  update(rows: Row[]): void;
  /** Ends the view (a terminal gets its cursor back); call it once, also on error. */
  stop(): void;
}

type Write = (text: string) => void;

/** Bytes per second per image, smoothed over the samples the CLI takes. */
export class RateMeter {
  private readonly last = new Map<string, { bytes: number; at: number; rate: number }>();

  /** Records `bytes` written for `id` at `now` (epoch seconds); the smoothed rate so far. */
  sample(id: string, bytes: number, now = Date.now() / 1000): number {
    const prev = this.last.get(id);
    let rate = prev?.rate ?? 0;
    if (prev && now > prev.at && bytes >= prev.bytes) {
      const instant = (bytes - prev.bytes) / (now - prev.at);
      rate = prev.rate ? 0.7 * prev.rate + 0.3 * instant : instant;
    }
    this.last.set(id, { bytes, at: now, rate });
    return rate;
  }
}

const eta = (r: Row) => (r.rate > 0 && r.total ? formatDuration((r.total - r.bytes) / r.rate) : "-");
const fraction = (r: Row) => (r.state === "cached" ? 1 : r.total ? Math.min(1, r.bytes / r.total) : 0);

/** One line per image: id, bar, percent, bytes, rate, ETA, state. */
const BAR_FORMAT = "{id} {bar} {percentage}% | {bytesText} | {rateText} | ETA {etaText} | {state}";

/** Bars on a terminal; `header`, when given, is a line above them that setHeader() changes. */
export function terminalView(
  stream: NodeJS.WriteStream,
  header?: string,
): ProgressView & { setHeader(text: string): void } {
  const multibar = new cliProgress.MultiBar(
    {
      stream,
      format: BAR_FORMAT,
      barsize: 24,
      barCompleteChar: "\u2588",
      barIncompleteChar: "\u2591",
      hideCursor: true,
      autopadding: true,
      clearOnComplete: false,
      fps: 8,
    },
    cliProgress.Presets.shades_classic,
  );
  const headerBar = header === undefined ? undefined : multibar.create(1, 0, { header }, { format: "{header}" });
  const bars = new Map<string, cliProgress.SingleBar>();
  return {
    update(rows) {
      const seen = new Set(rows.map((r) => r.id));
      for (const [id, bar] of bars) {
        if (!seen.has(id)) {
          multibar.remove(bar);
          bars.delete(id);
        }
      }
      for (const r of rows) {
        const payload = {
          id: r.id,
          bytesText: r.total === null ? formatBytes(r.bytes) : `${formatBytes(r.bytes)}/${formatBytes(r.total)}`,
          rateText: r.state === "caching" ? formatRate(r.rate) : "-",
          etaText: r.state === "caching" ? eta(r) : "-",
          state: r.note ? `${r.state} (${r.note})` : r.state,
        };
        // cli-progress draws value/total; a fraction in thousandths keeps unknown sizes drawable.
        const value = Math.round(fraction(r) * 1000);
        const bar = bars.get(r.id);
        if (bar) bar.update(value, payload);
        else bars.set(r.id, multibar.create(1000, value, payload));
      }
    },
    setHeader(text) {
      headerBar?.update(0, { header: text });
    },
    stop() {
      multibar.stop();
    },
  };
}

/** For pipes and files: a line when an image changes state, and one per tenth of a fill. */
export function lineView(write: Write): ProgressView {
  const last = new Map<string, { state: RowState; tenth: number }>();
  return {
    update(rows) {
      for (const r of rows) {
        const tenth = Math.floor(fraction(r) * 10);
        const prev = last.get(r.id);
        if (prev && prev.state === r.state && prev.tenth === tenth) continue;
        last.set(r.id, { state: r.state, tenth });
        write(`${plainLine(r)}\n`);
      }
    },
    stop() {},
  };
}

/** A row as one line of text: lineView's line. */
export function plainLine(r: Row): string {
  const pct = `${Math.floor(fraction(r) * 100)}%`;
  const size = r.total === null ? formatBytes(r.bytes) : `${formatBytes(r.bytes)}/${formatBytes(r.total)}`;
  const parts = [r.id, r.state];
  if (r.state === "caching") parts.push(pct, size, formatRate(r.rate), `ETA ${eta(r)}`);
  else if (r.state === "cached") parts.push(formatBytes(r.total ?? r.bytes));
  if (r.note) parts.push(r.note);
  return parts.join(" ");
}
