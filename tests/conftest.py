"""Core test configuration: torch on one thread so tests share the 2-core machine well."""

import torch

torch.set_num_threads(1)
