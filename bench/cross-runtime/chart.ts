/**
 * The cross-runtime chart: one hand-written SVG (no plotting dependency), a group of bars
 * per workload and device kind, one bar per runtime, showing its speed as a ratio of
 * Node's on the same workload and device kind (Node is 1 by definition). Two reference
 * lines: 1.0 (as fast as Node) and 0.7 (the BENCHMARKS.md target for Deno and Chromium).
 */

/** One group of bars: a label and each runtime's ratio to Node (null = no result). */
export interface ChartGroup {
  label: string;
  ratios: Record<string, number | null>;
}

const COLORS: Record<string, string> = { node: "#5fa04e", deno: "#222222", chromium: "#4285f4" };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Render the chart for `runtimes` (in bar order) as a standalone SVG document. */
export function ratioChart(title: string, groups: ChartGroup[], runtimes: string[]): string {
  const barW = 22;
  const gap = 26;
  const groupW = runtimes.length * barW + gap;
  const left = 48;
  const top = 40;
  const plotH = 220;
  const width = left + groups.length * groupW + 20;
  const height = top + plotH + 70;
  const maxRatio = Math.max(1.4, ...groups.flatMap((g) => Object.values(g.ratios).filter((r): r is number => r !== null))) * 1.08;
  const y = (r: number) => top + plotH - (r / maxRatio) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="${left}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`);
  // Axis ticks every 0.2 (or 0.5 when the scale is tall).
  const step = maxRatio > 3 ? 0.5 : 0.2;
  for (let t = 0; t <= maxRatio + 1e-9; t += step) {
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" fill="#666">${t.toFixed(1)}×</text>`);
  }
  for (const [r, color, label] of [[1, "#888", "Node"], [0.7, "#d33", "target 0.7×"]] as const) {
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${y(r).toFixed(1)}" y2="${y(r).toFixed(1)}" stroke="${color}" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${width - 12}" y="${(y(r) - 3).toFixed(1)}" text-anchor="end" fill="${color}">${label}</text>`);
  }
  groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + gap / 2;
    runtimes.forEach((rt, ri) => {
      const r = g.ratios[rt];
      const x = x0 + ri * barW;
      if (r === null || r === undefined) {
        out.push(`<text x="${x + barW / 2}" y="${y(0) - 4}" text-anchor="middle" fill="#999">–</text>`);
        return;
      }
      out.push(`<rect x="${x + 2}" y="${y(r).toFixed(1)}" width="${barW - 4}" height="${(y(0) - y(r)).toFixed(1)}" fill="${COLORS[rt] ?? "#999"}"><title>${esc(`${rt} ${g.label}: ${r.toFixed(2)}× Node`)}</title></rect>`);
      out.push(`<text x="${x + barW / 2}" y="${(y(r) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${r.toFixed(2)}</text>`);
    });
    const lines = g.label.split("\n");
    lines.forEach((l, li) => out.push(`<text x="${x0 + (runtimes.length * barW) / 2}" y="${top + plotH + 16 + li * 13}" text-anchor="middle">${esc(l)}</text>`));
  });
  runtimes.forEach((rt, i) => {
    const x = left + i * 90;
    out.push(`<rect x="${x}" y="${height - 18}" width="10" height="10" fill="${COLORS[rt] ?? "#999"}"/><text x="${x + 14}" y="${height - 9}">${esc(rt)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
