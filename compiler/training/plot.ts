/** A loss curve as a standalone SVG: the loss per step (thin) and its running mean over `smooth` steps. */
export function lossCurveSvg(losses: number[], opts: { title?: string; smooth?: number; width?: number; height?: number } = {}): string {
  const { title = "training loss", smooth = 25, width = 640, height = 360 } = opts;
  const pad = { left: 56, right: 16, top: 32, bottom: 40 };
  const w = width - pad.left - pad.right, h = height - pad.top - pad.bottom;
  const finite = losses.filter(Number.isFinite);
  const max = finite.length ? Math.max(...finite) : 1, min = Math.min(0, ...finite);
  const x = (i: number) => pad.left + (losses.length > 1 ? (i / (losses.length - 1)) * w : 0);
  const y = (v: number) => pad.top + h - ((v - min) / (max - min || 1)) * h;
  const path = (vs: number[]) => vs.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const mean = losses.map((_, i) => {
    const from = Math.max(0, i - smooth + 1);
    return losses.slice(from, i + 1).reduce((a, b) => a + b, 0) / (i + 1 - from);
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => min + f * (max - min));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`,
    ...ticks.map((t) => `<line x1="${pad.left}" x2="${pad.left + w}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/><text x="${pad.left - 6}" y="${y(t) + 4}" text-anchor="end">${t.toFixed(2)}</text>`),
    `<path d="${path(losses)}" fill="none" stroke="#9ecae1" stroke-width="1"/>`,
    `<path d="${path(mean)}" fill="none" stroke="#08519c" stroke-width="2"/>`,
    `<text x="${pad.left + w / 2}" y="${height - 8}" text-anchor="middle">step (${losses.length} in all; dark: mean of ${smooth})</text>`,
    `</svg>`,
  ].join("\n") + "\n";
}
