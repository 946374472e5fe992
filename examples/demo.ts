/**
 * `npm run demo`: compile the keyword-spotting DS-CNN (SIMD and scalar builds), the small CNN and the MLP to
 * blobs, run them in every engine installed that can (Node always; wasmtime, WAMR, wasm3, Chromium when
 * present), and print outputs and memory reports beside eager mode's outputs.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { compile, manualSeed, noGrad, Tensor } from "../compiler/index.js";
import type { WasmFeature } from "../compiler/host/wasm-info.js";
import { formatReport } from "../compiler/cli/main.js";
import { availableEngines, runOnEngine } from "../targets/engines.js";
import SmallCNN, { inputs as cnnInputs } from "./cnn.js";
import KwsDsCnn, { inputs as kwsInputs } from "./kws-dscnn.js";
import MLP, { inputs as mlpInputs } from "./mlp.js";

manualSeed(42);
mkdirSync("out", { recursive: true });
const kws = new KwsDsCnn();
const models = [
  { name: "kws-dscnn", model: kws, inputs: kwsInputs, target: "wasm-simd" },
  // the interpreter build: no v128 anywhere, so WAMR and wasm3 run it too (when `npm run engines` built them)
  { name: "kws-dscnn-scalar", model: kws, inputs: kwsInputs, target: "wasm-scalar" },
  { name: "cnn", model: new SmallCNN(), inputs: cnnInputs, target: "wasm-simd" },
  { name: "mlp", model: new MLP(), inputs: mlpInputs, target: "wasm-simd" },
];

for (const { name, model, inputs, target } of models) {
  const [inputName, shape] = Object.entries(inputs)[0];
  const x = Tensor.randn(shape);
  const eager = noGrad(() => model.forward(x) as Tensor);
  const result = await compile(model, inputs, { name, target });
  const path = `out/${name}.wasm`;
  writeFileSync(path, result.wasm);
  console.log(`\n${formatReport(result.report)}\n  blob written to ${path}`);
  for (const engine of availableEngines(result.manifest.features as WasmFeature[])) {
    const out = (await runOnEngine(engine, path, { [inputName]: x.data }))[result.manifest.outputs[0].name];
    const diff = Math.max(...Array.from(out as Float32Array, (v, i) => Math.abs(v - Number(eager.data[i]))));
    const top = Array.from(out as Float32Array).map((v, i) => [v, i]).sort((a, b) => b[0] - a[0])[0];
    console.log(`  ${engine.padEnd(9)} output[0..4] = ${Array.from(out.slice(0, 4) as Float32Array, (v) => v.toFixed(5)).join(", ")} …  argmax ${top[1]}  max |compiled − eager| = ${diff.toExponential(2)}`);
  }
}
