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
    // as MNIST's digits were made: the drawing's bounding box scaled into a 20x20 box of the 28x28 grid
    // (the browser's smoothing downscale averages the pad's pixels), then moved so its centre of mass is the
    // grid's centre
    const box = inkBox();
    seenContext.fillStyle = "#000";
    seenContext.fillRect(0, 0, width, height);
    seenContext.imageSmoothingEnabled = true;
    seenContext.imageSmoothingQuality = "high";
    if (box) {
      const scale = (0.71 * Math.min(width, height)) / Math.max(box.w, box.h);
      seenContext.drawImage(pad, box.x, box.y, box.w, box.h, (width - box.w * scale) / 2, (height - box.h * scale) / 2, box.w * scale, box.h * scale);
      const shift = centreOfMassOffset(seenContext.getImageData(0, 0, width, height).data, width, height);
      const moved = seenContext.getImageData(0, 0, width, height);
      seenContext.fillRect(0, 0, width, height);
      seenContext.putImageData(moved, shift.x, shift.y);
    }
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

  // the ink's bounding box, grown with each stroke segment (its ends and the pen's half width), so a
  // classification does not read the whole pad back
  let ink: { x0: number; y0: number; x1: number; y1: number } | null = null;
  const addInk = (p: { x: number; y: number }) => {
    const r = STROKE_WIDTH / 2;
    const [x0, y0] = [Math.max(0, Math.floor(p.x - r)), Math.max(0, Math.floor(p.y - r))];
    const [x1, y1] = [Math.min(pad.width, Math.ceil(p.x + r)), Math.min(pad.height, Math.ceil(p.y + r))];
    ink = ink ? { x0: Math.min(ink.x0, x0), y0: Math.min(ink.y0, y0), x1: Math.max(ink.x1, x1), y1: Math.max(ink.y1, y1) } : { x0, y0, x1, y1 };
  };
  const inkBox = () => (ink ? { x: ink.x0, y: ink.y0, w: ink.x1 - ink.x0, h: ink.y1 - ink.y0 } : null);

  const reset = () => {
    clearPad();
    ink = null;
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
    addInk(point);
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

/** whole pixels that move an image's centre of mass (by brightness) to its centre */
function centreOfMassOffset(rgba: Uint8ClampedArray, width: number, height: number): { x: number; y: number } {
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = rgba[4 * (y * width + x)];
      mass += v; mx += v * x; my += v * y;
    }
  }
  return mass === 0 ? { x: 0, y: 0 } : { x: Math.round((width - 1) / 2 - mx / mass), y: Math.round((height - 1) / 2 - my / mass) };
}
