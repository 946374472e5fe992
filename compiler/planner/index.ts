export { liveness } from "./liveness.js";
export type { ScheduleStep, BufferRequest } from "./liveness.js";
export { planArena, greedyBySize, liveLowerBound, checkNoOverlap } from "./arena.js";
export type { ArenaPlan } from "./arena.js";
export { renderPlanText, renderPlanSvg } from "./render.js";
