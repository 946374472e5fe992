import { writeFileSync } from "node:fs";
import { encodeNpy, loadMnist } from "teenygrad";

// one real handwritten digit from the `mnist` package, as the .npy file `teenygrad run` reads
const { test } = loadMnist({ train: 1, test: 1 });
writeFileSync("digit.npy", encodeNpy("float32", [1, 1, 28, 28], test.tensors.image));
