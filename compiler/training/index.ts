/** Training compiled into the blob: compile, load, run the host loop, read checkpoints out. */
export { compileTraining, planTraining, type LossName, type LossFn, type TrainingOptions, type TrainingReport, type TrainingResult, type TrainingMemoryReport, type MemoryRegion } from "./compile.js";
export type { OptimizerSpec } from "./optimizers.js";
export { loadTrainingBlob, TrainStepError, TRAIN_STATUS, type TrainingBlob } from "./blob.js";
export { trainLoop, evaluate, type Dataset, type EpochStats, type TrainLoopOptions, type TrainLoopResult } from "./loop.js";
export { loadMnist, type MnistOptions } from "./mnist.js";
export { lossCurveSvg } from "./plot.js";
export { formatTrainingReport } from "./report.js";
export { int8FineTuning, FrozenInt8Graph, DequantizedConv2d, DequantizedLinear, Int8FineTuning, type Int8FineTuningModel } from "./quantized.js";
