import { compile, loadBlob, loadBlobInWorker, loadMnist, nn, Tensor } from "teenygrad";

class Net extends nn.Module {
  fc1 = new nn.Linear(784, 128);
  fc2 = new nn.Linear(128, 10);
  forward(x: Tensor) { return this.fc2.forward(this.fc1.forward(x).relu()); }
}
const net = new Net();                      // initial weights; net.loadStateDict(nn.loadSafetensors(bytes)) loads a checkpoint
const { wasm, report } = await compile(net, { x: [1, 784] }, { target: "wasm-simd" });
console.log(`${report.wasmBytes} bytes of wasm, ${report.arena.bytes} bytes of arena`);

const model = await loadBlob(wasm);         // Node or browser: the WebAssembly API only
const pixels = loadMnist({ train: 1, test: 1 }).test.tensors.image;   // one 28x28 digit: 784 floats in [0, 1]
const { output } = model.run({ x: pixels }); // a zero-copy view into the blob's memory
const eager = net.forward(Tensor.from(pixels, { shape: [1, 784] }));  // eager mode, on the host
console.log("blob", Array.from(output, Number), "eager", Array.from(eager.data, Number));

const worker = await loadBlobInWorker(wasm);  // the same blob in a worker thread (a Web Worker in a browser)
const answer = await worker.run({ x: Tensor.from(pixels, { shape: [1, 784] }) });   // async: the caller never blocks
console.log(`worker ${answer.output.dtype} [${answer.output.shape}]`, Array.from(answer.output.data, Number));
await worker.terminate();
