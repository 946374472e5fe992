/**
 * Pictures of an arena plan: time runs down (one row per step), arena bytes run across.
 * Text for terminals and logs, SVG for reports.
 */
import { niceTicks, tickLabel } from "../plot/axis.js";
import type { ArenaPlan } from "./arena.js";
import type { BufferRequest } from "./liveness.js";

const SYMBOLS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Buffers in order of first use: symbols are handed out in that order, so buffers live together differ. */
function byFirstUse(buffers: BufferRequest[]): BufferRequest[] {
  return [...buffers].sort((a, b) => a.firstUse - b.firstUse || a.lastUse - b.lastUse || a.id - b.id);
}

function stepRange(buffers: BufferRequest[]): { firstStep: number; lastStep: number } {
  let firstStep = Infinity;
  let lastStep = -Infinity;
  for (const buffer of buffers) {
    firstStep = Math.min(firstStep, buffer.firstUse);
    lastStep = Math.max(lastStep, buffer.lastUse);
  }
  return { firstStep, lastStep };
}

const formatBytes = (bytes: number) => `${bytes.toLocaleString("en-US")} B`;
const percentAbove = (bytes: number, bound: number) => (bound > 0 ? `+${(((bytes - bound) / bound) * 100).toFixed(1)}%` : "");

function summary(plan: ArenaPlan): string {
  return (
    `arena ${formatBytes(plan.arenaBytes)} (${percentAbove(plan.arenaBytes, plan.lowerBound)} over lower bound ` +
    `${formatBytes(plan.lowerBound)}; TFLM greedy ${formatBytes(plan.greedyBaseline)}) via ${plan.strategy}`
  );
}

/**
 * ASCII picture of the plan: one row per step, `width` columns spanning the arena, one symbol per buffer
 * (a buffer too small for a column still gets one; where two share a column the first drawn wins),
 * live bytes at the end of each row, and a legend.
 */
export function renderPlanText(buffers: BufferRequest[], plan: ArenaPlan, width = 80, names?: Map<number, string>): string {
  if (buffers.length === 0 || plan.arenaBytes === 0) return `${summary(plan)}\n(no buffers)\n`;
  const ordered = byFirstUse(buffers);
  const { firstStep, lastStep } = stepRange(buffers);
  const column = (bytes: number) => Math.floor((bytes * width) / plan.arenaBytes);
  const stepLabelWidth = String(lastStep).length;
  const lines = [summary(plan), `${" ".repeat(stepLabelWidth)}  0${" ".repeat(Math.max(0, width - 1))}${formatBytes(plan.arenaBytes)}`];

  for (let step = firstStep; step <= lastStep; step++) {
    const row = new Array<string>(width).fill(".");
    let liveBytes = 0;
    ordered.forEach((buffer, index) => {
      if (buffer.firstUse > step || buffer.lastUse < step) return;
      liveBytes += buffer.bytes;
      const offset = plan.offsets.get(buffer.id) ?? 0;
      const start = Math.min(width - 1, column(offset));
      const end = Math.min(width, Math.max(start + 1, column(offset + buffer.bytes)));
      for (let c = start; c < end; c++) if (row[c] === ".") row[c] = SYMBOLS[index % SYMBOLS.length];
    });
    lines.push(`${String(step).padStart(stepLabelWidth)} |${row.join("")}| ${formatBytes(liveBytes)}`);
  }

  lines.push("legend (symbols repeat every 62 buffers in order of first use):");
  ordered.forEach((buffer, index) => {
    const offset = plan.offsets.get(buffer.id);
    lines.push(
      `  ${SYMBOLS[index % SYMBOLS.length]}  ${bufferName(buffer, names)}: ${formatBytes(buffer.bytes)} at ${offset ?? "?"}, ` +
        `steps ${buffer.firstUse}..${buffer.lastUse}`,
    );
  });
  return `${lines.join("\n")}\n`;
}

/** a buffer by what it holds when the compiler said so (the node writing it first), else by its id */
const bufferName = (buffer: BufferRequest, names?: Map<number, string>) => names?.get(buffer.id) ?? `buffer ${buffer.id}`;

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/**
 * SVG picture of the plan: a rectangle per buffer (bytes across, steps down) with a tooltip naming it,
 * round byte ticks, axis titles, and vertical lines at the lower bound, our arena end and TFLM's greedy
 * arena end, each labelled on a row of its own. The byte axis spans the larger of ours and TFLM's, so the
 * saving is visible.
 */
export function renderPlanSvg(buffers: BufferRequest[], plan: ArenaPlan, names?: Map<number, string>): string {
  const plotWidth = 800;
  const left = 64;
  const right = 24;
  const top = 56;
  const { firstStep, lastStep } = buffers.length > 0 ? stepRange(buffers) : { firstStep: 0, lastStep: 0 };
  const steps = lastStep - firstStep + 1;
  const rowHeight = Math.max(3, Math.min(16, Math.floor(600 / steps)));
  const plotHeight = steps * rowHeight;
  const byteTicks = niceTicks(0, Math.max(plan.arenaBytes, plan.greedyBaseline, 1), 8);
  const axisBytes = byteTicks[byteTicks.length - 1];
  const x = (bytes: number) => left + (bytes / axisBytes) * plotWidth;
  const y = (step: number) => top + (step - firstStep) * rowHeight;
  const round = (value: number) => Math.round(value * 100) / 100;
  const bottom = top + plotHeight;
  const markers: [string, number, string][] = [
    ["lower bound", plan.lowerBound, "#2a7"],
    ["ours", plan.arenaBytes, "#222"],
    ["TFLM greedy", plan.greedyBaseline, "#c33"],
  ];
  const height = bottom + 36 + markers.length * 12;

  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + plotWidth + right}" height="${height}" font-family="monospace" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="16">${escapeXml(summary(plan))}</text>`,
    `<text x="${left + plotWidth / 2}" y="34" text-anchor="middle">arena offset (bytes)</text>`,
    `<text transform="translate(14 ${top + plotHeight / 2}) rotate(-90)" text-anchor="middle">step (graph node, in run order)</text>`,
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="#f4f4f4"/>`,
  ];
  for (const t of byteTicks) {
    const at = round(x(t));
    parts.push(`<line x1="${at}" y1="${top - 4}" x2="${at}" y2="${bottom}" stroke="#ddd"/><text x="${at}" y="${top - 8}" text-anchor="${t === 0 ? "start" : t === axisBytes ? "end" : "middle"}">${tickLabel(t)}</text>`);
  }
  const labelEvery = Math.ceil(12 / rowHeight);
  for (let step = firstStep; step <= lastStep; step += labelEvery) {
    parts.push(`<text x="${left - 6}" y="${y(step) + rowHeight - 1}" text-anchor="end">${step}</text>`);
  }
  byFirstUse(buffers).forEach((buffer, index) => {
    const offset = plan.offsets.get(buffer.id) ?? 0;
    // Golden-angle hues keep buffers that start close together far apart in colour.
    const hue = Math.round((index * 137.508) % 360);
    parts.push(
      `<rect x="${round(x(offset))}" y="${y(buffer.firstUse)}" width="${round(Math.max(1, x(offset + buffer.bytes) - x(offset)))}" ` +
        `height="${(buffer.lastUse - buffer.firstUse + 1) * rowHeight}" fill="hsl(${hue},65%,62%)" stroke="#333" stroke-width="0.5">` +
        `<title>${escapeXml(bufferName(buffer, names))}: ${buffer.bytes} B at ${offset}, steps ${buffer.firstUse}..${buffer.lastUse}</title></rect>`,
    );
  });
  markers.forEach(([label, bytes, colour], index) => {
    const at = round(x(bytes));
    // a row per label, anchored away from the picture's edges, so none overlaps another or leaves the picture
    const anchor = at > left + plotWidth * 0.85 ? "end" : at < left + plotWidth * 0.15 ? "start" : "middle";
    parts.push(
      `<line x1="${at}" y1="${top - 4}" x2="${at}" y2="${bottom + 6 + index * 12}" stroke="${colour}" stroke-dasharray="4 3"/>`,
      `<text x="${at}" y="${bottom + 16 + index * 12}" fill="${colour}" text-anchor="${anchor}">${label} ${formatBytes(bytes)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
