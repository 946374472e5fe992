import * as flatbuffers from "flatbuffers";
import {
  Buffer, BuiltinOperator, BuiltinOptions, Model, Operator, OperatorCode, QuantizationParameters, SubGraph, Tensor, TensorType,
} from "./schema/tflite_generated.js";

/**
 * Writes small .tflite files with flatc's generated builders: synthetic models for the importer's tests (ops the
 * MLPerf models do not use, unsupported ops, fuzzing seeds). Not a converter: the caller lays out every tensor.
 */

export interface TensorSpec {
  name: string;
  shape: number[];
  type?: TensorType;
  /** constant data, little-endian as stored */
  data?: Uint8Array;
  quantization?: { scale: number[]; zeroPoint: number[]; axis?: number };
}

export interface OperatorSpec {
  op: BuiltinOperator;
  /** for CUSTOM operators */
  customCode?: string;
  inputs: number[];
  outputs: number[];
  /** builds the options table in `b` and returns its type and offset */
  options?: (b: flatbuffers.Builder) => [BuiltinOptions, flatbuffers.Offset];
}

export interface ModelSpec {
  tensors: TensorSpec[];
  operators: OperatorSpec[];
  inputs: number[];
  outputs: number[];
}

export const float32Bytes = (values: ArrayLike<number>): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);
export const int32Bytes = (values: ArrayLike<number>): Uint8Array => new Uint8Array(Int32Array.from(values).buffer);

export function writeTflite(spec: ModelSpec): Uint8Array {
  const b = new flatbuffers.Builder(1024);
  // buffer 0 is the empty sentinel every data-less tensor points at
  const bufferOffsets = [Buffer.createBuffer(b, 0, 0n, 0n)];
  const tensorBuffer = spec.tensors.map((t) => {
    if (!t.data) return 0;
    b.startVector(1, t.data.length, 16);
    for (let i = t.data.length - 1; i >= 0; i--) b.addInt8(t.data[i]);
    bufferOffsets.push(Buffer.createBuffer(b, b.endVector(), 0n, 0n));
    return bufferOffsets.length - 1;
  });
  const tensors = spec.tensors.map((t, i) => {
    const name = b.createString(t.name);
    const shape = Tensor.createShapeVector(b, t.shape);
    let quantization = 0;
    if (t.quantization) {
      const scale = QuantizationParameters.createScaleVector(b, t.quantization.scale);
      const zeroPoint = QuantizationParameters.createZeroPointVector(b, t.quantization.zeroPoint.map(BigInt));
      QuantizationParameters.startQuantizationParameters(b);
      QuantizationParameters.addScale(b, scale);
      QuantizationParameters.addZeroPoint(b, zeroPoint);
      QuantizationParameters.addQuantizedDimension(b, t.quantization.axis ?? 0);
      quantization = QuantizationParameters.endQuantizationParameters(b);
    }
    Tensor.startTensor(b);
    Tensor.addShape(b, shape);
    Tensor.addType(b, t.type ?? TensorType.FLOAT32);
    Tensor.addBuffer(b, tensorBuffer[i]);
    Tensor.addName(b, name);
    if (quantization) Tensor.addQuantization(b, quantization);
    return Tensor.endTensor(b);
  });
  const codes: string[] = [];
  const codeOffsets: flatbuffers.Offset[] = [];
  const operators = spec.operators.map((o) => {
    const key = `${o.op}:${o.customCode ?? ""}`;
    if (!codes.includes(key)) {
      const custom = o.customCode ? b.createString(o.customCode) : 0;
      codeOffsets.push(OperatorCode.createOperatorCode(b, Math.min(o.op, BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES), custom, 1, o.op));
      codes.push(key);
    }
    const [optionsType, options] = o.options ? o.options(b) : [BuiltinOptions.NONE, 0];
    const inputs = Operator.createInputsVector(b, o.inputs);
    const outputs = Operator.createOutputsVector(b, o.outputs);
    Operator.startOperator(b);
    Operator.addOpcodeIndex(b, codes.indexOf(key));
    Operator.addInputs(b, inputs);
    Operator.addOutputs(b, outputs);
    if (options) {
      Operator.addBuiltinOptionsType(b, optionsType);
      Operator.addBuiltinOptions(b, options);
    }
    return Operator.endOperator(b);
  });
  const subgraph = SubGraph.createSubGraph(
    b,
    SubGraph.createTensorsVector(b, tensors),
    SubGraph.createInputsVector(b, spec.inputs),
    SubGraph.createOutputsVector(b, spec.outputs),
    SubGraph.createOperatorsVector(b, operators),
    b.createString("main"),
  );
  const model = Model.createModel(
    b, 3, Model.createOperatorCodesVector(b, codeOffsets), Model.createSubgraphsVector(b, [subgraph]), b.createString("teenygrad test model"),
    Model.createBuffersVector(b, bufferOffsets), 0, 0, 0,
  );
  Model.finishModelBuffer(b, model);
  return b.asUint8Array().slice();
}
