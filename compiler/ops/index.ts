/** The op registry, with every op file loaded. Import ops from here. */
import "./elementwise";
import "./linalg";
import "./reduce";
import "./shape";
import "./fused";

export { allOps, defineOp, getOp, inferTypes } from "./registry";
export type { ElementwiseCode, Epilogue, LowerContext, OpDef } from "./registry";
