import assert from "node:assert/strict";
import { test } from "node:test";
import { niceTicks, tickLabel } from "../compiler/plot/axis.js";
import { lossCurveSvg } from "../compiler/training/plot.js";

test("niceTicks: round steps (1, 2, 5 × 10^k) that cover the range (hand-computed)", () => {
  assert.deepEqual(niceTicks(0, 1.72), [0, 0.5, 1, 1.5, 2]);
  assert.deepEqual(niceTicks(0, 2.3026), [0, 0.5, 1, 1.5, 2, 2.5]);
  assert.deepEqual(niceTicks(0, 100), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0, 16000, 8), [0, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000]);
  assert.deepEqual(niceTicks(0.1, 0.3, 2), [0.1, 0.2, 0.3]);
  assert.deepEqual(niceTicks(-3, 7), [-4, -2, 0, 2, 4, 6, 8]);
  assert.deepEqual(niceTicks(5, 5), [5, 6, 7, 8, 9, 10]);
  assert.equal(tickLabel(0.30000000000000004), "0.3");
  assert.equal(tickLabel(16000), "16,000");
});

test("the loss curve: round loss ticks, step ticks, epoch ends, held-out accuracy on its own axis", () => {
  const losses = Array.from({ length: 300 }, (_, i) => 2.3 * Math.exp(-i / 80) + 0.1);
  const svg = lossCurveSvg(losses, { epochs: [{ steps: 100, validationAccuracy: 0.71 }, { steps: 100, validationAccuracy: 0.86 }, { steps: 100, validationAccuracy: 0.9 }] });
  const yTicks = [...svg.matchAll(/stroke="#eee"\/><text [^>]*>([^<]*)</g)].map((m) => m[1]);
  assert.deepEqual(yTicks, ["0", "0.5", "1", "1.5", "2", "2.5"]);
  const xTicks = [...svg.matchAll(/stroke="#333"\/><text [^>]*>([^<]*)</g)].map((m) => m[1]);
  assert.deepEqual(xTicks, ["0", "50", "100", "150", "200", "250", "300"]);
  assert.equal(svg.match(/stroke-dasharray="3 3"/g)?.length, 2, "dashed lines between the 3 epochs");
  assert.equal(svg.match(/<circle /g)?.length, 3);
  assert.match(svg, />held-out accuracy</);
  assert.match(svg, />loss</);
  // without epochs: no accuracy axis
  assert.doesNotMatch(lossCurveSvg(losses), /held-out|<circle/);
});
