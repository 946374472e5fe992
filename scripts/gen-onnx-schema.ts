// Regenerates compiler/import/onnx/onnx-schema.json from onnx.proto (copied from the onnx 1.22.0 wheel,
// Apache-2.0). The importer loads the JSON so neither the bundle nor the installed package reads .proto files.
import { readFileSync, writeFileSync } from "node:fs";
import protobuf from "protobufjs";

const dir = new URL("../compiler/import/onnx/", import.meta.url);
const { root } = protobuf.parse(readFileSync(new URL("onnx.proto", dir), "utf8"), { keepCase: true });
writeFileSync(new URL("onnx-schema.json", dir), JSON.stringify(root.toJSON()) + "\n");
