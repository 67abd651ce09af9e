// Progress of images being cached: bars on a terminal (cli-progress), plain lines otherwise.
import cliProgress from "cli-progress";
import { formatBytes, formatDuration, formatRate } from "./format.ts";

/** An image's state (or a node's part's) as a progress view shows it. */
export type RowState = "queued" | "waiting" | "caching" | "cached" | "failed" | "expired";

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

const BAR_MAX = 24;
const BAR_MIN = 5;

/**
 * A row as one terminal line no wider than `width`: id, bar, percent, bytes, rate, ETA, state (and its note when
 * `note`); what does not fit goes, least useful first: the note, the ETA, the rate, the bytes, the bar; then the
 * line is cut. The fields are padded to their widest, so that a row keeps its shape while its fill moves.
 */
export function barLine(r: Row, width: number, note = true): string {
  const f = fraction(r);
  const pct = `${Math.floor(f * 100)}%`.padStart(4);
  const caching = r.state === "caching";
  // "1023.9 MiB" is the widest size, "1023.9 MiB/s" the widest rate, "59m59s" the widest ETA but for hours.
  const written = formatBytes(r.bytes).padStart(10);
  const size = r.total === null ? written : `${written}/${formatBytes(r.total)}`;
  const rate = (caching ? formatRate(r.rate) : "-").padStart(12);
  const etaText = `ETA ${(caching ? eta(r) : "-").padStart(6)}`;
  const shapes = [[size, rate, etaText, r.state], [size, rate, r.state], [size, r.state], [r.state]];
  if (note && r.note) shapes.unshift([size, rate, etaText, `${r.state} (${r.note})`]);
  for (const shape of shapes) {
    const text = `${pct} | ${shape.join(" | ")}`;
    // Measured as if the state were "caching", the longest, so that the bar keeps its size when the state changes.
    const room = Math.min(BAR_MAX, width - r.id.length - 2 - text.length - (7 - Math.min(7, r.state.length)));
    if (room < BAR_MIN) continue;
    const done = Math.round(f * room);
    return `${r.id} ${"\u2588".repeat(done)}${"\u2591".repeat(room - done)} ${text}`;
  }
  return `${r.id} ${pct.trim()} ${r.state}`.slice(0, Math.max(0, width));
}

/** `text` broken at spaces into lines no wider than `width` (a word wider than that is cut), the rest indented. */
export function wrapLine(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `  ${word}`;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.map((l) => l.slice(0, Math.max(1, width)));
}

/** How terminalView draws: `header` is a line above the bars that setHeader() changes; with `verdicts`, a row's
 * note stays out of its bar and stop() prints each cached row's verdict (plainLine) on lines of its own. */
export interface TerminalOptions {
  header?: string;
  verdicts?: boolean;
}

/** Bars on a terminal, each line fitted to the terminal's width (redrawn as it changes). */
export function terminalView(
  stream: NodeJS.WriteStream,
  options: TerminalOptions = {},
): ProgressView & { setHeader(text: string): void } {
  const multibar = new cliProgress.MultiBar(
    {
      stream,
      // One column short of the width: cli-progress clears to the end of the line after drawing it, and with the
      // terminal's wrapping off that would erase a character in the last column.
      format: (_options, params, payload: { row: Row }) => barLine(payload.row, params.maxWidth - 1, !options.verdicts),
      hideCursor: true,
      clearOnComplete: false,
      fps: 8,
    },
    cliProgress.Presets.shades_classic,
  );
  const headerBar = options.header === undefined ? undefined : multibar.create(1, 0, { header: options.header }, {
    format: (_options, params, payload: { header: string }) => payload.header.slice(0, params.maxWidth - 1),
  });
  const bars = new Map<string, cliProgress.SingleBar>();
  const rows = new Map<string, Row>();
  return {
    update(now) {
      const seen = new Set(now.map((r) => r.id));
      for (const [id, bar] of bars) {
        if (!seen.has(id)) {
          multibar.remove(bar);
          bars.delete(id);
          rows.delete(id);
        }
      }
      for (const r of now) {
        rows.set(r.id, r);
        // cli-progress draws value/total; a fraction in thousandths keeps unknown sizes drawable.
        const value = Math.round(fraction(r) * 1000);
        const bar = bars.get(r.id);
        if (bar) bar.update(value, { row: r });
        else bars.set(r.id, multibar.create(1000, value, { row: r }));
      }
    },
    setHeader(text) {
      headerBar?.update(0, { header: text });
    },
    stop() {
      multibar.stop();
      if (!options.verdicts) return;
      const width = stream.columns || 80;
      for (const r of rows.values()) {
        if (r.state === "cached" && r.note) stream.write(`${wrapLine(plainLine(r), width).join("\n")}\n`);
      }
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
