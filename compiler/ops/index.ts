/** The op registry, with every op file loaded. Import ops from here. */
import "./elementwise.js";
import "./linalg.js";
import "./reduce.js";
import "./shape.js";
import "./fused.js";
import "./training.js";
import "./indexing.js";
import "./quant.js";
import "./winograd.js";

export { allOps, defineOp, getOp, inferTypes } from "./registry.js";
export type { ElementwiseCode, Epilogue, LowerContext, OpDef } from "./registry.js";
