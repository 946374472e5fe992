// WAMR's AOT compiler (targets/mcu/aot.ts: wamrc built from the vendored WAMR sources against Debian's LLVM) built
// at install time into the teenygrad cache, so that the AOT tests and bench:mcu find it ready; a no-op when it is
// already built for the same WAMR sources, LLVM and driver (the cache key).
import { buildWamrc } from "../targets/mcu/aot.js";

const start = performance.now();
const wamrc = await buildWamrc();
console.log(`wamrc: ${wamrc} (${((performance.now() - start) / 1000).toFixed(1)} s)`);
