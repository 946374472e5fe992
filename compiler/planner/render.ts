/**
 * Pictures of an arena plan: time runs down (one row per step), arena bytes run across.
 * Text for terminals and logs, SVG for reports.
 */
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
export function renderPlanText(buffers: BufferRequest[], plan: ArenaPlan, width = 80): string {
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
      `  ${SYMBOLS[index % SYMBOLS.length]}  buffer ${buffer.id}: ${formatBytes(buffer.bytes)} at ${offset ?? "?"}, ` +
        `steps ${buffer.firstUse}..${buffer.lastUse}`,
    );
  });
  return `${lines.join("\n")}\n`;
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/**
 * SVG picture of the plan: a rectangle per buffer (bytes across, steps down) with a tooltip, and vertical
 * lines at the lower bound, our arena end and TFLM's greedy arena end. The byte axis spans the larger of
 * ours and TFLM's, so the saving is visible.
 */
export function renderPlanSvg(buffers: BufferRequest[], plan: ArenaPlan): string {
  const plotWidth = 800;
  const left = 48;
  const top = 40;
  const { firstStep, lastStep } = buffers.length > 0 ? stepRange(buffers) : { firstStep: 0, lastStep: 0 };
  const steps = lastStep - firstStep + 1;
  const rowHeight = Math.max(3, Math.min(16, Math.floor(600 / steps)));
  const plotHeight = steps * rowHeight;
  const axisBytes = Math.max(plan.arenaBytes, plan.greedyBaseline, 1);
  const x = (bytes: number) => left + (bytes / axisBytes) * plotWidth;
  const y = (step: number) => top + (step - firstStep) * rowHeight;
  const round = (value: number) => Math.round(value * 100) / 100;

  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + plotWidth + 16}" height="${top + plotHeight + 24}" font-family="monospace" font-size="11">`,
    `<text x="${left}" y="16">${escapeXml(summary(plan))}</text>`,
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="#f4f4f4"/>`,
  ];
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
        `<title>buffer ${buffer.id}: ${buffer.bytes} B at ${offset}, steps ${buffer.firstUse}..${buffer.lastUse}</title></rect>`,
    );
  });
  const markers: [string, number, string][] = [
    ["lower bound", plan.lowerBound, "#2a7"],
    ["ours", plan.arenaBytes, "#222"],
    ["TFLM greedy", plan.greedyBaseline, "#c33"],
  ];
  markers.forEach(([label, bytes, colour], index) => {
    const at = round(x(bytes));
    parts.push(
      `<line x1="${at}" y1="${top - 4}" x2="${at}" y2="${top + plotHeight}" stroke="${colour}" stroke-dasharray="4 3"/>`,
      `<text x="${at}" y="${top + plotHeight + 12 + (index % 2) * 10}" fill="${colour}" text-anchor="middle">${label}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
