/**
 * Builds the kernel library of every target into ${TEENYGRAD_CACHE:-~/.cache/teenygrad}/kernel-library
 * (compile() otherwise builds each on first use), so parallel test processes do not all build it at once:
 * at asconfig.json's level (-O3) and at -O1 (the conformance run and some tests compile with optimizeLevel 1).
 *   npm run kernel-library
 */
import { TARGETS } from "../targets/index.js";
import { kernelLibrary, libraryCacheDir } from "../compiler/codegen/library.js";

for (const optimizeLevel of [undefined, 1] as const) {
  for (const target of Object.values(TARGETS)) {
    const lib = await kernelLibrary(target, optimizeLevel);
    console.log(`${target.name.padEnd(14)} -O${optimizeLevel ?? 3} ${String(lib.binary.byteLength).padStart(7)} bytes  ${lib.ascMillis ? `built in ${(lib.ascMillis / 1000).toFixed(1)} s` : "cached"}  ${libraryCacheDir()}/${lib.key}.wasm`);
  }
}
