npx teenygrad --version
npx teenygrad compile mlp.ts -o mlp.wasm --plan plan.svg --report report.json
npx tsx digit.ts
npx teenygrad run mlp.wasm --input image=digit.npy --out out/node
npx teenygrad run mlp.wasm --input image=digit.npy --out out/wasmtime --engine wasmtime
npx teenygrad run mlp.wasm --input image=digit.npy --out out/chromium --engine chromium
npx teenygrad compile mlp.ts -o mlp-scalar.wasm --target wasm-scalar
npx teenygrad run mlp-scalar.wasm --input image=digit.npy --out out/wamr --engine wamr
npx teenygrad compile mlp.ts -o mlp-mvp.wasm --target wasm-mvp
npx teenygrad run mlp-mvp.wasm --input image=digit.npy --out out/wasm3 --engine wasm3
npx teenygrad compile mlp.ts -o mlp-relaxed.wasm --target wasm-relaxed
npx teenygrad run mlp-relaxed.wasm --input image=digit.npy --out out/relaxed
npx teenygrad inspect mlp.wasm --ram 512K --flash 512K
npx teenygrad export-c mlp.wasm -o mlp.h
