import { fail } from "../errors.js";
import type { Graph, Value } from "../ir/graph.js";
import { getOp } from "../ops/index.js";
import { shapeStr } from "../ir/shape.js";

/**
 * Streaming state: a model that carries state from one call to the next (an LSTM's h and c, a context window)
 * takes it as an input and returns the next state as an output. Named pairs (state input → the output whose
 * value it takes) keep that state inside the blob: the input leaves the graph's inputs (no host feeds it), its
 * buffer lives between calls, and copies at the end of run() write each next state over it.
 */

/** A state input and the graph output (by position: passes may replace the value) that feeds it. */
export interface StatePair {
  input: Value;
  outputIndex: number;
}

/** Checks `pairs` (state input name → output name) against the graph: both exist, same shape and dtype. */
export function resolveStatePairs(g: Graph, pairs: Record<string, string>): StatePair[] {
  const inputs = g.inputs.map((v) => v.name), outputs = g.outputs.map((v) => v.name);
  return Object.entries(pairs).map(([inputName, outputName]) => {
    const input = g.inputs.find((v) => v.name === inputName)
      ?? fail(`streaming state ${inputName}=${outputName}: the model has no input '${inputName}' (inputs: ${inputs.join(", ") || "none"})`);
    const outputIndex = outputs.indexOf(outputName);
    if (outputIndex < 0) fail(`streaming state ${inputName}=${outputName}: the model has no output '${outputName}' (outputs: ${outputs.join(", ")})`);
    const output = g.outputs[outputIndex];
    if (output.shape.join() !== input.shape.join() || output.dtype !== input.dtype) {
      fail(`streaming state ${inputName}=${outputName}: input '${inputName}' is ${input.dtype} ${shapeStr(input.shape)} but output '${outputName}' is ${output.dtype} ${shapeStr(output.shape)}; a state must keep its shape and dtype`);
    }
    return { input, outputIndex };
  });
}

/**
 * Takes the state inputs out of the graph's inputs and appends, after every other node, one copy per pair
 * from the output to a new value that layoutMemory places on the input's bytes. Returns the pairs as
 * layoutMemory's `state` option wants them. Run after the passes: nothing may move or fuse the copies.
 */
export function attachStreamState(g: Graph, pairs: StatePair[]): { value: Value; next: Value; output: Value }[] {
  const states = new Set(pairs.map((p) => p.input));
  g.inputs = g.inputs.filter((v) => !states.has(v));
  // an output that shares a state input's bytes (the state itself, or a view of it) must be read before any
  // copy overwrites them, by the next copy as by the host: it becomes an arena copy, keeping its name
  const sharesState = (v: Value): boolean => states.has(v) || (v.producer !== null && getOp(v.producer.op).view === true && sharesState(v.producer.inputs[0]));
  g.outputs = g.outputs.map((output) => {
    if (!sharesState(output)) return output;
    const copy = g.addNode("copy", [output], {}, `${output.name}/copy`).outputs[0];
    copy.name = output.name;
    return copy;
  });
  // (addNode appends: the arena copies above come before every copy into the state region)
  return pairs.map(({ input, outputIndex }) => ({
    value: input,
    next: g.addNode("copy", [g.outputs[outputIndex]], {}, `${input.name}/store`).outputs[0],
    output: g.outputs[outputIndex],
  }));
}

/** A name with what marks it as a state input or output taken away: h_in / h_out → h, state / stateN → state, h0 / hn → h. */
function stateStem(name: string): string {
  const words = name.toLowerCase().split(/[^a-z0-9]+/).filter((w) => !["in", "out", "input", "output", "prev", "next", "new", "old", "last", "init", "initial"].includes(w));
  return words.join("_").replace(/(?<=[a-z])(n|0)$/, "");
}

/**
 * Input/output pairs that look like streaming state (the same shape and dtype, names that differ only by
 * in/out, prev/next, a trailing 0 or n): only a suggestion, shown to the user, who confirms it with the flag.
 */
export function suggestStatePairs(g: Graph): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const input of g.inputs) {
    const stem = stateStem(input.name);
    const output = stem ? g.outputs.find((o) => stateStem(o.name) === stem && o.shape.join() === input.shape.join() && o.dtype === input.dtype) : undefined;
    if (output) pairs[input.name] = output.name;
  }
  return pairs;
}
