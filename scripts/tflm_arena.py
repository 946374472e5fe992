"""Finds TensorFlow Lite Micro's smallest working arena for a .tflite model (PyPI tflite-micro), by bisection.

usage: python tflm_arena.py MODEL [MODEL...]
Prints one JSON line per model: {"model": path, "arena": bytes}. The smallest arena is the smallest arena_size for
which the interpreter allocates its tensors and runs once on zero inputs. Installed by scripts/install-litert.sh.
"""
import json
import os
import sys

from tflite_micro.python.tflite_micro import runtime


def runs_with(model, arena_size):
    try:
        interpreter = runtime.Interpreter.from_file(model, arena_size=arena_size)
        interpreter.invoke()
        return True
    except RuntimeError:
        return False


def smallest_arena(model):
    lo, hi = 0, 1 << 16
    while not runs_with(model, hi):
        lo, hi = hi, hi * 2
        if hi > 1 << 28:
            sys.exit(f"{model}: TFLM does not run it even with a {hi}-byte arena")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if runs_with(model, mid) else (mid, hi)
    return hi


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    # TFLM reports every failed allocation on stderr; the bisection expects most of them
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    for model in sys.argv[1:]:
        os.dup2(devnull, 2)
        arena = smallest_arena(model)
        os.dup2(saved, 2)
        print(json.dumps({"model": model, "arena": arena}), flush=True)


if __name__ == "__main__":
    main()
