// Every kernel entry point (pointer-based, callable from generated code or exported to a host).
// The inline helpers (actScalar / actVec in ./act, the vmath functions in ./vmath) are imported from
// their modules directly: v128 signatures cannot be compiled into a scalar build's exports.
export {
  ACT_NONE, ACT_RELU, ACT_CLAMP, ACT_LEAKY, ACT_SIGMOID, ACT_TANH, ACT_SILU, ACT_HARDSWISH, ACT_GELU,
  ACT_HARDSIGMOID, ACT_ELU, actInPlace,
} from "./act";
export { BIAS_NONE, BIAS_COL, BIAS_ROW, gemm } from "./gemm";
export { conv2d, conv2dIm2col, depthwise3x3 } from "./conv";
export { conv2dWinograd } from "./winograd";
export { maxpool2d, avgpool2d } from "./pool";
export {
  REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD, REDUCE_SUM_SQUARE, REDUCE_L1,
  REDUCE_LOG_SUM_EXP, reduce, argreduce,
} from "./reduce";
export { softmax } from "./softmax";
export { layernorm } from "./norm";
export { stridedCopy, fill32, gatherRows } from "./copy";
// the threaded build's share of an im2col convolution (compiler/codegen/threads.ts)
export { conv2dIm2colPixels } from "./conv";
