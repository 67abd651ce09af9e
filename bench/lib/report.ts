// The report: a Markdown table (medians, spread, ratio to the reference measured in the same run, target) and an SVG chart.
import type { Runtime } from "../../support/processes.ts";
import type { Row } from "../rows.ts";
import { chartSvg } from "./chart.ts";
import { median, spread } from "./measure.ts";

const NAME: Record<Runtime, string> = { node: "Node", deno: "Deno" };

function fmt(v: number, unit: Row["unit"]): string {
  if (!Number.isFinite(v)) return "n/a";
  if (unit === "s") return `${v < 10 ? v.toFixed(2) : v.toFixed(1)} s`;
  if (unit === "ms") return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`;
  if (unit === "CPU-s/GiB") return `${v.toFixed(2)} CPU-s/GiB`;
  return `${v.toFixed(0)} ${unit}`;
}

const fmtRatio = (r: number | null) => (r === null || !Number.isFinite(r) ? "n/a" : `${r.toFixed(2)}×`);

/** Median of the per-run ratios (each value over the reference measured next to it). */
export function ratio(row: Row, rt: Runtime): number | null {
  const rs = (row.samples[rt] ?? []).filter((s) => s.ref !== null && s.ref > 0).map((s) => s.value / s.ref!);
  return rs.length ? median(rs) : null;
}

export function meets(row: Row, rt: Runtime): boolean | null {
  const r = ratio(row, rt);
  if (r === null) return null;
  return row.better === "lower" ? r <= row.targets[rt] : r >= row.targets[rt];
}

function cell(row: Row, rt: Runtime): string {
  const xs = (row.samples[rt] ?? []).map((s) => s.value);
  if (!xs.length) return "n/a";
  const sp = xs.length > 1 ? ` ±${((spread(xs) * 100) / 2).toFixed(0)}%` : "";
  return `${fmt(median(xs), row.unit)}${sp}`;
}

function refCell(row: Row, runtimes: Runtime[]): string {
  if (row.ref.budget !== undefined) return row.ref.name;
  const refs = runtimes.flatMap((rt) => (row.samples[rt] ?? []).map((s) => s.ref)).filter((v): v is number =>
    v !== null
  );
  return refs.length ? `${row.ref.name}: ${fmt(median(refs), row.unit)}` : `${row.ref.name}: not run`;
}

export function markdown(
  rows: Row[],
  runtimes: Runtime[],
  meta: { title: string; lines: string[]; chart: string },
): string {
  const L: string[] = [`# ${meta.title}`, "", ...meta.lines, ""];
  const head = [
    "row",
    ...runtimes.flatMap((rt) => [NAME[rt], `${NAME[rt]} ÷ ref`]),
    "reference (median)",
    "target (÷ ref)",
  ];
  L.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "--:")).join("|")}|`);
  for (const row of rows) {
    const cells = [row.label];
    for (const rt of runtimes) {
      const m = meets(row, rt);
      cells.push(cell(row, rt), `${fmtRatio(ratio(row, rt))}${m === null ? "" : m ? " ✓" : " ✗"}`);
    }
    cells.push(refCell(row, runtimes));
    const sign = row.better === "lower" ? "≤" : "≥";
    cells.push(runtimes.map((rt) => `${NAME[rt]} ${sign} ${row.targets[rt]}×`).join(", "));
    L.push(`| ${cells.join(" | ")} |`);
  }
  L.push("");
  L.push(
    "Values: median of the runs ± half their range (as % of the median). Ratio: median over the runs of value ÷ the reference",
  );
  L.push(
    "measured right before it; ↓-rows (s, CPU, ms, MB) want a ratio at or under the target, ↑-rows (MB/s) at or over it.",
  );
  const rss = rows.filter((r) => Object.keys(r.rssMb).length && r.ref.budget !== 150);
  if (rss.length) {
    L.push(
      "",
      `Peak RSS per row: ${
        rss.map((r) =>
          `${r.label}: ${runtimes.map((rt) => `${NAME[rt]} ${r.rssMb[rt]?.toFixed(0) ?? "n/a"} MB`).join(", ")}`
        ).join("; ")
      }.`,
    );
  }
  const errors = rows.flatMap((r) => r.errors.map((e) => `${r.label}: ${e}`));
  if (errors.length) L.push("", `**Errors:** ${[...new Set(errors)].join("; ")}`);
  L.push("", `![value ÷ reference per row](${meta.chart})`, "");
  return L.join("\n");
}

export function chart(rows: Row[], runtimes: Runtime[], subtitle: string): string {
  const colors: Record<Runtime, string> = { node: "#3c873a", deno: "#2b2b2b" };
  return chartSvg({
    title: "glance-cache-node ÷ its references",
    subtitle,
    series: runtimes.map((rt) => ({ name: `our node on ${NAME[rt]}`, color: colors[rt] })),
    groups: rows.map((row) => ({
      label: row.label,
      sub: `÷ ${row.ref.name} · ${row.better} is better`,
      values: runtimes.map((rt) => ratio(row, rt)),
      targets: runtimes.map((rt) => row.targets[rt]),
    })),
  });
}
