import { fail } from "../errors.js";
import { DTYPES, numel, type DType, type TypedArray } from "./dtype.js";

export interface TensorType {
  shape: number[];
  dtype: DType;
}

/** A tensor with host data: the currency of the reference implementations. */
export interface HostTensor extends TensorType {
  data: TypedArray;
}

export type Attrs = Record<string, unknown>;

/**
 * A value in the graph. `input`: fed by the host at run time; `weight`: a named model parameter;
 * `const`: data known at compile time (folded or created in forward); `node`: produced by a node.
 */
export class Value {
  producer: Node | null = null;
  /** an int8 graph input or output's grid (real value = (q − zeroPoint)·scale), recorded in the manifest */
  quantization?: { scale: number; zeroPoint: number };
  constructor(
    readonly id: number,
    public type: TensorType,
    public kind: "input" | "weight" | "const" | "node",
    public name: string,
    public data: TypedArray | null = null,
  ) {}

  get shape(): number[] {
    return this.type.shape;
  }
  get dtype(): DType {
    return this.type.dtype;
  }
  get bytes(): number {
    return numel(this.type.shape) * DTYPES[this.type.dtype].bytes;
  }
  get isConstant(): boolean {
    return this.kind === "weight" || this.kind === "const";
  }
  host(): HostTensor {
    if (!this.data) fail(`value ${this.name} has no data at compile time`);
    return { shape: this.type.shape, dtype: this.type.dtype, data: this.data };
  }
}

/** A condition a node runs under: the bool scalar `cond` is `when` (a data-dependent If's branch). */
export interface Guard {
  cond: Value;
  when: boolean;
}

export class Node {
  /** the node runs only when every guard holds; otherwise run() skips it and its outputs keep stale bytes */
  guard: Guard[] = [];
  constructor(
    readonly id: number,
    public op: string,
    public inputs: Value[],
    public outputs: Value[],
    public attrs: Attrs,
    public name: string,
  ) {}
}

/** Infers a node's output types. Supplied by the op registry (kept out of this file so the IR has no op knowledge). */
export type InferFn = (op: string, inputs: TensorType[], attrs: Attrs, nodeName: string) => TensorType[];

/** A static graph: nodes are kept in a valid execution (topological) order. */
export class Graph {
  nodes: Node[] = [];
  inputs: Value[] = [];
  outputs: Value[] = [];
  private nextId = 0;

  constructor(private readonly infer: InferFn) {}

  addInput(name: string, type: TensorType): Value {
    if (this.inputs.some((v) => v.name === name)) fail(`duplicate graph input name '${name}'`);
    const v = new Value(this.nextId++, type, "input", name);
    this.inputs.push(v);
    return v;
  }

  addConstant(host: HostTensor, name: string, kind: "weight" | "const" = "const"): Value {
    return new Value(this.nextId++, { shape: [...host.shape], dtype: host.dtype }, kind, name, host.data);
  }

  /** Creates a node, inferring its output types; it is appended (callers that rewrite use insertBefore). */
  addNode(op: string, inputs: Value[], attrs: Attrs = {}, name?: string): Node {
    const node = this.makeNode(op, inputs, attrs, name);
    this.nodes.push(node);
    return node;
  }

  /** Creates a node placed just before `anchor` in execution order. */
  insertBefore(anchor: Node, op: string, inputs: Value[], attrs: Attrs = {}, name?: string): Node {
    const node = this.makeNode(op, inputs, attrs, name);
    this.nodes.splice(this.nodes.indexOf(anchor), 0, node);
    return node;
  }

  private makeNode(op: string, inputs: Value[], attrs: Attrs, name?: string): Node {
    const id = this.nextId++;
    const nodeName = name ?? `${op}_${id}`;
    const types = this.infer(op, inputs.map((v) => v.type), attrs, nodeName);
    const node = new Node(id, op, inputs, [], attrs, nodeName);
    node.outputs = types.map((t, i) => {
      const v = new Value(this.nextId++, t, "node", types.length === 1 ? nodeName : `${nodeName}:${i}`);
      v.producer = node;
      return v;
    });
    return node;
  }

  /**
   * Every use of `from` (node inputs and graph outputs) now reads `to`. A pass that knows `from`'s readers
   * (consumers()) passes them, so replacing values one by one stays linear in the graph's size.
   */
  replaceAllUses(from: Value, to: Value, readers: Node[] = this.nodes): void {
    for (const n of readers) {
      if (n.inputs.includes(from)) n.inputs = n.inputs.map((v) => (v === from ? to : v));
      if (n.guard.some((g) => g.cond === from)) n.guard = n.guard.map((g) => (g.cond === from ? { ...g, cond: to } : g));
    }
    // a rewritten graph output keeps the name the host knows it by
    if (to.kind === "node" && this.outputs.includes(from)) to.name = from.name;
    this.outputs = this.outputs.map((v) => (v === from ? to : v));
  }

  removeNode(node: Node): void {
    this.nodes.splice(this.nodes.indexOf(node), 1);
  }

  /** Removes many nodes in one pass (removeNode one by one costs a search of the node list each). */
  removeNodes(nodes: Set<Node>): void {
    if (nodes.size) this.nodes = this.nodes.filter((n) => !nodes.has(n));
  }

  /** Map from value to the nodes that read it (as an input or a guard's condition), in execution order. */
  consumers(): Map<Value, Node[]> {
    const uses = new Map<Value, Node[]>();
    for (const n of this.nodes) for (const v of [...n.inputs, ...n.guard.map((g) => g.cond)]) {
      const list = uses.get(v);
      if (list) {
        if (list[list.length - 1] !== n) list.push(n);
      } else uses.set(v, [n]);
    }
    return uses;
  }

  /** Distinct weight/const values the nodes read, in first-use order. */
  constants(): Value[] {
    const seen = new Set<Value>();
    for (const n of this.nodes) for (const v of n.inputs) if (v.isConstant) seen.add(v);
    for (const v of this.outputs) if (v.isConstant) seen.add(v);
    return [...seen];
  }

  /** Whether two nodes run under the same conditions (passes only merge such nodes). */
  static sameGuard(a: Node, b: Node): boolean {
    return a.guard.length === b.guard.length && a.guard.every((g, i) => g.cond === b.guard[i].cond && g.when === b.guard[i].when);
  }

  /** One line per node, for debugging and error messages. */
  toString(): string {
    const fmt = (v: Value) => `${v.name}[${v.shape.join("x")}]`;
    return this.nodes
      .map((n) => `${n.outputs.map(fmt).join(", ")} = ${n.op}(${n.inputs.map(fmt).join(", ")}) ${JSON.stringify(n.attrs)}`)
      .join("\n");
  }
}
