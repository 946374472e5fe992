/**
 * The browser example's script: the user draws on a canvas, the page downscales the drawing to the blob's input
 * size and runs model.wasm (built by build.ts) through the browser-safe loader on every stroke, then shows the
 * output vector, its largest entry and the bars. window.lastRun exposes what was fed in and what came out.
 */
import { loadBlob, type LoadedModel } from "../../compiler/host/loader.js";

const BLOB_URL = "model.wasm";
const STROKE_WIDTH = 22; // on the 280-pixel pad: about two pixels of a 28x28 image, like MNIST's pen

interface LastRun {
  input: number[];
  output: number[];
  top: number;
}
declare global {
  interface Window {
    lastRun?: LastRun;
  }
}

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const pad = element<HTMLCanvasElement>("pad");
const seen = element<HTMLCanvasElement>("seen");
const topClass = element<HTMLDivElement>("top");
const outputsList = element<HTMLDivElement>("outputs");
const status = element<HTMLDivElement>("status");
const padContext = pad.getContext("2d")!;
const seenContext = seen.getContext("2d", { willReadFrequently: true })!;

function clearPad(): void {
  padContext.fillStyle = "#000";
  padContext.fillRect(0, 0, pad.width, pad.height);
}

/** one row per output value: index, bar, value */
function outputRows(count: number): { row: HTMLElement[]; bar: HTMLDivElement; value: HTMLSpanElement }[] {
  return Array.from({ length: count }, (_, i) => {
    const label = document.createElement("span");
    label.textContent = String(i);
    const track = document.createElement("div");
    track.className = "bar";
    const bar = document.createElement("div");
    bar.style.width = "0";
    track.append(bar);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = "–";
    outputsList.append(label, track, value);
    return { row: [label, track, value], bar, value };
  });
}

/** the blob's input must be one grey image: [..., H, W] with every leading dimension 1 */
function imageSize(model: LoadedModel): { name: string; dtype: string; height: number; width: number } {
  const { name, dtype, shape } = model.manifest.inputs[0];
  const [height, width] = shape.slice(-2);
  if (model.manifest.inputs.length !== 1 || shape.length < 2 || shape.slice(0, -2).some((d) => d !== 1)) {
    throw new Error(`this page feeds one grey image, but the blob's inputs are ${model.manifest.inputs.map((s) => `${s.name}[${s.shape}]`).join(", ")}`);
  }
  return { name, dtype, height, width };
}

async function start(): Promise<void> {
  const response = await fetch(BLOB_URL);
  if (!response.ok) throw new Error(`GET ${BLOB_URL}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const model = await loadBlob(bytes, { source: BLOB_URL });
  const { name: inputName, dtype: inputType, height, width } = imageSize(model);
  const output = model.manifest.outputs[0];
  seen.width = width;
  seen.height = height;
  const rows = outputRows(model.outputs[output.name].length);

  const classify = () => {
    // the browser's smoothing downscale averages the pad's pixels into the model's input grid
    seenContext.imageSmoothingEnabled = true;
    seenContext.imageSmoothingQuality = "high";
    seenContext.drawImage(pad, 0, 0, width, height);
    const rgba = seenContext.getImageData(0, 0, width, height).data;
    const input = new Float32Array(width * height);
    for (let i = 0; i < input.length; i++) input[i] = rgba[4 * i] / 255;

    const started = performance.now();
    const values = Array.from(model.run({ [inputName]: input })[output.name] as Float32Array);
    const millis = performance.now() - started;
    const best = values.indexOf(Math.max(...values));
    topClass.textContent = String(best);
    rows.forEach(({ row, bar, value }, i) => {
      bar.style.width = `${Math.min(Math.max(values[i], 0), 1) * 100}%`;
      value.textContent = values[i].toFixed(4);
      for (const cell of row) cell.classList.toggle("best", i === best);
    });
    status.textContent = `${BLOB_URL} · ${(bytes.byteLength / 1024).toFixed(0)} KB · ${inputName} ${inputType}[${height}x${width}] → ${output.name} ${output.dtype}[${output.shape.join("x")}] · run ${millis.toFixed(2)} ms`;
    window.lastRun = { input: Array.from(input), output: values, top: best };
  };

  const reset = () => {
    clearPad();
    seenContext.clearRect(0, 0, width, height);
    topClass.textContent = "–";
    for (const { row, bar, value } of rows) {
      bar.style.width = "0";
      value.textContent = "–";
      for (const cell of row) cell.classList.remove("best");
    }
    delete window.lastRun;
  };

  // pointer events cover mouse, touch and pen alike
  let last: { x: number; y: number } | null = null;
  const padPoint = (e: PointerEvent) => {
    const rect = pad.getBoundingClientRect();
    return { x: ((e.clientX - rect.left) * pad.width) / rect.width, y: ((e.clientY - rect.top) * pad.height) / rect.height };
  };
  const strokeTo = (point: { x: number; y: number }) => {
    padContext.strokeStyle = "#fff";
    padContext.lineWidth = STROKE_WIDTH;
    padContext.lineCap = "round";
    padContext.lineJoin = "round";
    padContext.beginPath();
    padContext.moveTo((last ?? point).x, (last ?? point).y);
    padContext.lineTo(point.x, point.y);
    padContext.stroke();
    last = point;
    classify();
  };
  pad.addEventListener("pointerdown", (e) => {
    pad.setPointerCapture(e.pointerId);
    last = null;
    strokeTo(padPoint(e));
  });
  pad.addEventListener("pointermove", (e) => {
    if (last) strokeTo(padPoint(e));
  });
  const endStroke = () => {
    last = null;
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  element<HTMLButtonElement>("clear").addEventListener("click", reset);

  reset();
  status.textContent = `${BLOB_URL} loaded (${(bytes.byteLength / 1024).toFixed(0)} KB): draw a digit`;
  document.body.dataset.model = "ready";
}

start().catch((e: unknown) => {
  status.textContent = `cannot run ${BLOB_URL}: ${e instanceof Error ? e.message : String(e)}`;
  document.body.dataset.model = "error";
});
