/**
 * `npm run demo`: compile the keyword-spotting DS-CNN, the small CNN and the MLP to blobs, run them in Node (and in
 * wasmtime when it is installed), and print outputs and memory reports beside eager mode's outputs.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { compile, manualSeed, Tensor } from "../compiler/index.js";
import { formatReport } from "../compiler/cli/main.js";
import { availableEngines, runOnEngine } from "../targets/engines.js";
import SmallCNN, { inputs as cnnInputs } from "./cnn.js";
import KwsDsCnn, { inputs as kwsInputs } from "./kws-dscnn.js";
import MLP, { inputs as mlpInputs } from "./mlp.js";

manualSeed(42);
mkdirSync("out", { recursive: true });
const models = [
  { name: "kws-dscnn", model: new KwsDsCnn(), inputs: kwsInputs },
  { name: "cnn", model: new SmallCNN(), inputs: cnnInputs },
  { name: "mlp", model: new MLP(), inputs: mlpInputs },
];

for (const { name, model, inputs } of models) {
  const [inputName, shape] = Object.entries(inputs)[0];
  const x = Tensor.randn(shape);
  const eager = model.forward(x) as Tensor;
  const result = await compile(model, inputs, { name });
  const path = `out/${name}.wasm`;
  writeFileSync(path, result.wasm);
  console.log(`\n${formatReport(result.report)}\n  blob written to ${path}`);
  for (const engine of availableEngines()) {
    const out = (await runOnEngine(engine, path, { [inputName]: x.data }))[result.manifest.outputs[0].name];
    const diff = Math.max(...Array.from(out as Float32Array, (v, i) => Math.abs(v - Number(eager.data[i]))));
    const top = Array.from(out as Float32Array).map((v, i) => [v, i]).sort((a, b) => b[0] - a[0])[0];
    console.log(`  ${engine.padEnd(9)} output[0..4] = ${Array.from(out.slice(0, 4) as Float32Array, (v) => v.toFixed(5)).join(", ")} …  argmax ${top[1]}  max |compiled − eager| = ${diff.toExponential(2)}`);
  }
}
