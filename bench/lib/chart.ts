// A hand-built SVG bar chart of ratios (value ÷ reference, log scale), one bar per series, its target marked on it.

export interface ChartGroup {
  /** Shown left of the bars. */
  label: string;
  /** Second line under the label (the reference, which way is better). */
  sub: string;
  /** One bar per series; null: not measured. */
  values: (number | null)[];
  /** Where each series' target lies on the ratio axis (undefined: none). */
  targets: (number | undefined)[];
}

export interface ChartSpec {
  title: string;
  subtitle: string;
  series: { name: string; color: string }[];
  groups: ChartGroup[];
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (r: number) =>
  (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)) + "×";

export function chartSvg(spec: ChartSpec): string {
  const W = 1200;
  const left = 390;
  const right = 90;
  const top = 96;
  const barH = 13;
  const gap = 3;
  const groupPad = 16;
  const nS = spec.series.length;
  const groupH = nS * (barH + gap) + groupPad;
  const H = top + spec.groups.length * groupH + 50;
  const all = spec.groups.flatMap((g) => [...g.values, ...g.targets.map((t) => t ?? null)]).filter((v): v is number =>
    v !== null && v > 0 && Number.isFinite(v)
  );
  let lo = Math.floor(Math.log10(Math.min(0.5, ...all)));
  let hi = Math.ceil(Math.log10(Math.max(2, ...all)));
  lo = Math.max(lo, -3);
  hi = Math.min(hi, 4);
  const plotW = W - left - right;
  const x = (v: number) => left + ((Math.log10(Math.min(Math.max(v, 10 ** lo), 10 ** hi)) - lo) / (hi - lo)) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="20" y="30" font-size="20" font-weight="bold" fill="#111">${esc(spec.title)}</text>`);
  out.push(`<text x="20" y="52" font-size="13" fill="#444">${esc(spec.subtitle)}</text>`);
  // legend
  let lx = left;
  for (const s of spec.series) {
    out.push(`<rect x="${lx}" y="64" width="14" height="14" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 20}" y="76" font-size="13" fill="#222">${esc(s.name)}</text>`);
    lx += 30 + s.name.length * 8;
  }
  out.push(
    `<line x1="${lx + 10}" y1="71" x2="${lx + 34}" y2="71" stroke="#e67e00" stroke-width="3" stroke-dasharray="4,3"/>`,
  );
  out.push(`<text x="${lx + 40}" y="76" font-size="13" fill="#222">target</text>`);
  // grid
  const gridBottom = top + spec.groups.length * groupH;
  for (let e = lo; e <= hi; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v > 10 ** hi || v < 10 ** lo) continue;
      const gx = x(v);
      const major = m === 1;
      out.push(
        `<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${gridBottom}" stroke="${
          v === 1 ? "#000" : major ? "#bbb" : "#e4e4e4"
        }" stroke-width="${v === 1 ? 1.5 : 1}"/>`,
      );
      if (major || hi - lo <= 3) {
        out.push(
          `<text x="${gx}" y="${gridBottom + 18}" font-size="12" fill="#333" text-anchor="middle">${
            v >= 1 ? v : v.toPrecision(1)
          }×</text>`,
        );
      }
    }
  }
  out.push(
    `<text x="${left + plotW / 2}" y="${
      gridBottom + 38
    }" font-size="13" fill="#333" text-anchor="middle">value ÷ reference (log scale; 1× = the reference)</text>`,
  );
  spec.groups.forEach((g, gi) => {
    const gy = top + gi * groupH;
    if (gi % 2 === 1) {
      out.push(`<rect x="10" y="${gy - 4}" width="${W - 20}" height="${groupH - groupPad + 8}" fill="#f6f6f6"/>`);
    }
    out.push(
      `<text x="${left - 12}" y="${gy + 14}" font-size="13" fill="#111" text-anchor="end">${esc(g.label)}</text>`,
    );
    out.push(`<text x="${left - 12}" y="${gy + 30}" font-size="11" fill="#666" text-anchor="end">${esc(g.sub)}</text>`);
    g.values.forEach((v, si) => {
      const by = gy + si * (barH + gap);
      if (v === null || !Number.isFinite(v) || v <= 0) {
        out.push(
          `<text x="${x(1) + 4}" y="${by + barH - 2}" font-size="11" fill="#999">${v === 0 ? "0" : "n/a"}</text>`,
        );
        return;
      }
      const x0 = Math.min(x(1), x(v));
      const w = Math.max(1, Math.abs(x(v) - x(1)));
      out.push(`<rect x="${x0}" y="${by}" width="${w}" height="${barH}" fill="${spec.series[si].color}"/>`);
      const tx = v >= 1 ? x(v) + 4 : x(v) - 4;
      out.push(
        `<text x="${tx}" y="${by + barH - 2}" font-size="11" fill="#222" text-anchor="${v >= 1 ? "start" : "end"}">${
          fmt(v)
        }</text>`,
      );
    });
    g.targets.forEach((target, si) => {
      if (target === undefined) return;
      const by = gy + si * (barH + gap);
      out.push(
        `<line x1="${x(target)}" y1="${by - 1}" x2="${x(target)}" y2="${
          by + barH + 1
        }" stroke="#e67e00" stroke-width="3" stroke-dasharray="3,2"/>`,
      );
    });
  });
  out.push(`</svg>`);
  return out.join("\n");
}
