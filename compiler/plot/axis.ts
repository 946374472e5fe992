/** Axis helpers the SVG pictures share: tick values a person can read. */

/**
 * About `count` ticks covering [min, max] at a round step (1, 2 or 5 times a power of ten), the first at or
 * below min and the last at or above max, so the data sits inside the labelled range.
 */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(Number.isFinite(min) && Number.isFinite(max))) return [0, 1];
  if (max <= min) max = min + (min === 0 ? 1 : Math.abs(min));
  const rough = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const first = Math.floor(min / step + 1e-9), last = Math.ceil(max / step - 1e-9);
  // multiply, not add: k·step stays exactly round where repeated sums drift (0.30000000000000004)
  return Array.from({ length: last - first + 1 }, (_, i) => Number(((first + i) * step).toPrecision(12)));
}

/** A tick label: thousands separated, no float noise (0.3, not 0.30000000000000004). */
export const tickLabel = (value: number): string => Number(value.toPrecision(6)).toLocaleString("en-US", { maximumFractionDigits: 6 });
