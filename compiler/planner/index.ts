export { liveness } from "./liveness";
export type { ScheduleStep, BufferRequest } from "./liveness";
export { planArena, greedyBySize, liveLowerBound, checkNoOverlap } from "./arena";
export type { ArenaPlan } from "./arena";
export { renderPlanText, renderPlanSvg } from "./render";
