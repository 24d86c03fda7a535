"""One torch thread: the tests' tensors are tiny, and extra threads only contend on a shared CPU."""

import torch

torch.set_num_threads(1)
