import { fail } from "../errors.js";
import { Graph, type Attrs, type Node, type Value } from "../ir/graph.js";
import { inferTypes } from "../ops/index.js";
import type { Tensor } from "./tensor.js";

/**
 * Tracing: the model's forward runs once on symbolic inputs; every op on a symbolic tensor or a named
 * parameter becomes a graph node. Parameters stay graph values (named weights) so later passes fold
 * their transforms and the training compiler can update them.
 */
export class Trace {
  readonly graph: Graph;
  private captured: Map<Tensor, Value>;
  private usedNames = new Set<string>();
  private nextSuffix = new Map<string, number>();

  /**
   * `opts.graph`: record into this graph (a training step traces forward, backward and update into one);
   * `opts.bound`: tensors that already stand for a value (a training graph's parameters, which are not
   * compile-time constants there: the step overwrites them).
   */
  constructor(private readonly parameterNames: Map<Tensor, string>, opts: { graph?: Graph; bound?: Map<Tensor, Value> } = {}) {
    this.graph = opts.graph ?? new Graph(inferTypes);
    this.captured = new Map(opts.bound);
    for (const n of this.graph.nodes) this.usedNames.add(n.name);
  }

  /** buffer updates a traced forward asks for (BatchNorm's running statistics); the training compiler applies them */
  readonly deferredUpdates: { buffer: Tensor; next: () => Tensor }[] = [];
  deferUpdate(buffer: Tensor, next: () => Tensor): void {
    this.deferredUpdates.push({ buffer, next });
  }

  isParameter(t: Tensor): boolean {
    return this.parameterNames.has(t);
  }

  record(op: string, inputs: Tensor[], attrs: Attrs): Node {
    const values = inputs.map((t) => t.value ?? this.capture(t));
    return this.graph.addNode(op, values, attrs, this.nodeName(op, values));
  }

  private capture(t: Tensor): Value {
    let v = this.captured.get(t);
    if (!v) {
      const name = this.parameterNames.get(t);
      // copy: the compiled model must not change if the module's weights change later
      const host = { shape: [...t.shape], dtype: t.dtype, data: t.data.slice() };
      v = this.graph.addConstant(host, name ?? `const_${this.captured.size}`, name ? "weight" : "const");
      this.captured.set(t, v);
    }
    return v;
  }

  /** Nodes are named after the module whose parameters they read ("features.0/conv2d"), else after the op. */
  private nodeName(op: string, inputs: Value[]): string {
    const weight = inputs.find((v) => v.kind === "weight");
    const base = weight ? `${weight.name.replace(/\.[^.]*$/, "")}/${op}` : op;
    let name = base;
    // names are never freed: the search for a free suffix resumes where the last one for this base ended
    let k = this.nextSuffix.get(base) ?? 1;
    for (; this.usedNames.has(name); k++) name = `${base}_${k}`;
    this.nextSuffix.set(base, k);
    this.usedNames.add(name);
    return name;
  }
}

const TRACE = Symbol.for("teenygrad.activeTrace");
type Holder = { [TRACE]?: Trace | null };

/** The trace in progress. Kept on globalThis so a model file that imports another copy of the library still records into it. */
export const activeTrace = (): Trace | null => (globalThis as Holder)[TRACE] ?? null;

export function withTrace<T>(trace: Trace, fn: () => T): T {
  if (activeTrace()) fail("a trace is already in progress (tracing is not re-entrant)");
  (globalThis as Holder)[TRACE] = trace;
  try {
    return fn();
  } finally {
    (globalThis as Holder)[TRACE] = null;
  }
}
