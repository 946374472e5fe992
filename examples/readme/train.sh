npx teenygrad compile --train mlp.ts --batch 32 --optimizer adam --lr 1e-3 -o mlp-train.wasm
npx teenygrad train mlp-train.wasm --mnist 2000,500 --epochs 1 -o trained.safetensors --curve loss.svg
npx teenygrad compile mlp.ts --state trained.safetensors -o trained.wasm
npx teenygrad run trained.wasm --input image=digit.npy --out out/trained
