import { compile, loadBlobPool, loadThreadedBlob, nn, Tensor } from "teenygrad";

class Net extends nn.Module {
  conv1 = new nn.Conv2d(3, 32, 3, { padding: 1 });
  conv2 = new nn.Conv2d(32, 32, 3, { padding: 1 });
  forward(x: Tensor) { return this.conv2.forward(this.conv1.forward(x).relu()).relu(); }
}
const net = new Net();
const image = Tensor.randn([1, 3, 32, 32]);

// one inference split over workers that share one memory; the blob runs on 1..4 of them
const threaded = await compile(net, { x: [1, 3, 32, 32] }, { target: "wasm-simd-threads", threads: 4 });
const model = await loadThreadedBlob(threaded.wasm, { threads: 2 });
const { output } = await model.run({ x: image });        // async: the caller's thread never computes or blocks
await model.terminate();

// independent inferences of a single-threaded blob, side by side on 2 workers
const { wasm } = await compile(net, { x: [1, 3, 32, 32] }, { target: "wasm-simd" });
const pool = await loadBlobPool(wasm, { workers: 2 });
const answers = await Promise.all([image, image.neg()].map((x) => pool.run({ x })));
await pool.terminate();
console.log(`threads: ${output.length} floats; pool: ${answers.length} answers, the first the same bytes: ${answers[0].output.data.every((v, i) => Object.is(v, output[i]))}`);
