/**
 * Every error a user can cause is a TeenygradError: the CLI prints its message alone (no stack),
 * so the message must name what is wrong (op, node, file, tensor, both shapes…).
 */
export class TeenygradError extends Error {
  override name = "TeenygradError";
}

export function fail(message: string): never {
  throw new TeenygradError(message);
}
