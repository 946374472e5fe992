import { fail } from "../../errors.js";
import type { HostTensor } from "../../ir/graph.js";
import { tensorFromProto, toInt, type AttributeProto, type GraphProto, type NodeProto } from "./proto.js";

const decodeText = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array());

/** Typed access to a node's attributes; every error names the node and the attribute. */
export class NodeAttrs {
  private readonly byName: Map<string, AttributeProto>;
  constructor(private readonly node: NodeProto, private readonly label: string) {
    this.byName = new Map((node.attribute ?? []).map((a) => [a.name, a]));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }
  int(name: string, def?: number): number {
    const a = this.byName.get(name);
    return a ? toInt(a.i) : this.missing(name, def);
  }
  float(name: string, def?: number): number {
    const a = this.byName.get(name);
    return a ? (a.f ?? 0) : this.missing(name, def);
  }
  string(name: string, def?: string): string {
    const a = this.byName.get(name);
    return a ? decodeText(a.s) : this.missing(name, def);
  }
  ints(name: string, def?: number[]): number[] {
    const a = this.byName.get(name);
    return a ? (a.ints ?? []).map(toInt) : this.missing(name, def);
  }
  floats(name: string, def?: number[]): number[] {
    const a = this.byName.get(name);
    return a ? [...(a.floats ?? [])] : this.missing(name, def);
  }
  strings(name: string, def?: string[]): string[] {
    const a = this.byName.get(name);
    return a ? (a.strings ?? []).map(decodeText) : this.missing(name, def);
  }
  tensor(name: string): HostTensor {
    const a = this.byName.get(name);
    if (!a?.t) fail(`${this.label}: attribute '${name}' is missing`);
    return tensorFromProto(a.t, `${this.label} attribute '${name}'`);
  }
  graph(name: string): GraphProto {
    const a = this.byName.get(name);
    if (!a?.g) fail(`${this.label}: required graph attribute '${name}' is missing`);
    return a.g;
  }
  /** Attributes this importer does not read but that change the op's meaning when set. */
  unsupported(name: string, allowed: (value: number) => boolean = (v) => v === 0): void {
    if (this.has(name) && !allowed(this.int(name))) fail(`${this.label}: attribute ${name}=${this.int(name)} is not supported`);
  }

  private missing<T>(name: string, def: T | undefined): T {
    if (def === undefined) fail(`${this.label}: required attribute '${name}' is missing`);
    return def;
  }
}
