"""Two more ways to write an optimizer on the same compiler: a functional Optimizer (call_param /
call_model) and torch.optim drop-ins (compiler.optim.torch, needs torch)."""
