"""Two more ways to write an optimizer on the same compiler: a functional Optimizer (call_param /
call_model) and torch.optim drop-ins (compiler.optim.torch, needs torch)."""
from .builtins import LAMB, SGD, Adam, Adamax, AdamW, Lion
from .optimizer import Optimizer

__all__ = ["Optimizer", "Adam", "AdamW", "SGD", "Adamax", "LAMB", "Lion"]
