import { niceTicks, tickLabel } from "../plot/axis.js";

/** What the loss curve shows of each epoch: where it ends and, when measured, its held-out accuracy. */
export interface CurveEpoch {
  steps: number;
  validationAccuracy: number | null;
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * A loss curve as a standalone SVG: the loss per step (thin), its running mean over `smooth` steps (dark),
 * round ticks on both axes, epoch boundaries when `epochs` are given, and their held-out accuracy (orange,
 * on the right-hand 0–100% axis).
 */
export function lossCurveSvg(losses: number[], opts: { title?: string; smooth?: number; width?: number; height?: number; epochs?: CurveEpoch[] } = {}): string {
  const { title = "training loss", smooth = 25, width = 640, height = 360, epochs = [] } = opts;
  const accuracies = epochs.map((e) => e.validationAccuracy);
  const withAccuracy = accuracies.some((a) => a !== null);
  const pad = { left: 64, right: withAccuracy ? 56 : 16, top: 32, bottom: 48 };
  const w = width - pad.left - pad.right, h = height - pad.top - pad.bottom;
  const finite = losses.filter(Number.isFinite);
  const yTicks = niceTicks(Math.min(0, ...finite), finite.length ? Math.max(...finite) : 1);
  const [lo, hi] = [yTicks[0], yTicks[yTicks.length - 1]];
  const steps = Math.max(1, losses.length);
  const x = (step: number) => pad.left + (step / steps) * w;
  const y = (v: number) => pad.top + h - ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * h;
  // step i (0-based) is drawn at the end of its step, i + 1
  const path = (vs: number[]) => vs.map((v, i) => `${i ? "L" : "M"}${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const mean = losses.map((_, i) => {
    const from = Math.max(0, i - smooth + 1);
    return losses.slice(from, i + 1).reduce((a, b) => a + b, 0) / (i + 1 - from);
  });
  const ends: number[] = [];
  for (const e of epochs) ends.push((ends.at(-1) ?? 0) + e.steps);
  const xTicks = niceTicks(0, steps, 6).filter((t) => t <= steps);
  const accuracyY = (a: number) => pad.top + h - a * h;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
    ...yTicks.map((t) => `<line x1="${pad.left}" x2="${pad.left + w}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/><text x="${pad.left - 6}" y="${y(t) + 4}" text-anchor="end">${tickLabel(t)}</text>`),
    ...xTicks.map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${pad.top + h}" y2="${pad.top + h + 4}" stroke="#333"/><text x="${x(t)}" y="${pad.top + h + 16}" text-anchor="middle">${tickLabel(t)}</text>`),
    ...ends.slice(0, -1).map((s) => `<line x1="${x(s)}" x2="${x(s)}" y1="${pad.top}" y2="${pad.top + h}" stroke="#bbb" stroke-dasharray="3 3"/>`),
    `<line x1="${pad.left}" x2="${pad.left + w}" y1="${pad.top + h}" y2="${pad.top + h}" stroke="#333"/>`,
    `<path d="${path(losses)}" fill="none" stroke="#9ecae1" stroke-width="1"/>`,
    `<path d="${path(mean)}" fill="none" stroke="#08519c" stroke-width="2"/>`,
    `<text x="${pad.left + w / 2}" y="${height - 8}" text-anchor="middle">step${epochs.length ? ` (${epochs.length} epoch${epochs.length > 1 ? "s" : ""}, dashed at their ends)` : ""}; dark: mean of ${smooth} steps</text>`,
    `<text transform="translate(14 ${pad.top + h / 2}) rotate(-90)" text-anchor="middle">loss</text>`,
  ];
  if (withAccuracy) {
    const points = accuracies.flatMap((a, i) => (a === null ? [] : [[x(ends[i]), accuracyY(a)] as const]));
    parts.push(
      ...[0, 0.25, 0.5, 0.75, 1].map((a) => `<text x="${pad.left + w + 6}" y="${accuracyY(a) + 4}" fill="#d95f0e">${100 * a}%</text>`),
      `<path d="${points.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join("")}" fill="none" stroke="#d95f0e" stroke-width="1.5"/>`,
      ...points.map(([px, py]) => `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3" fill="#d95f0e"/>`),
      `<text transform="translate(${width - 8} ${pad.top + h / 2}) rotate(90)" text-anchor="middle" fill="#d95f0e">held-out accuracy</text>`,
    );
  }
  parts.push(`</svg>`);
  return parts.join("\n") + "\n";
}
