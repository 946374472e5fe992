#!/usr/bin/env bash
# PyTorch 1.13 from Debian (python3-torch, for /usr/bin/python3): the reference for test/training-torch.test.ts
# and the PyTorch column of npm run bench:training.
exec bash "$(dirname "$0")/apt-install.sh" "PyTorch" python3-torch
