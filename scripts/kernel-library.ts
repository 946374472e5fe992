/**
 * Builds the kernel library of every target into ${TEENYGRAD_CACHE:-~/.cache/teenygrad}/kernel-library
 * (compile() otherwise builds each on first use), so parallel test processes do not all build it at once.
 *   npm run kernel-library
 */
import { TARGETS } from "../targets/index.js";
import { kernelLibrary, libraryCacheDir } from "../compiler/codegen/library.js";

for (const target of Object.values(TARGETS)) {
  const lib = await kernelLibrary(target);
  console.log(`${target.name.padEnd(14)} ${String(lib.binary.byteLength).padStart(7)} bytes  ${lib.ascMillis ? `built in ${(lib.ascMillis / 1000).toFixed(1)} s` : "cached"}  ${libraryCacheDir()}/${lib.key}.wasm`);
}
