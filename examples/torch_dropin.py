"""The PyTorch quick example ("learning PyTorch with examples", the Adam version) with the compiled
drop-in Adam: only the import changes. Needs torch.

Run: python examples/torch_dropin.py
"""
from __future__ import annotations

import torch

from compiler.optim.torch import Adam  # instead of torch.optim.Adam


def main() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 1000), torch.randn(64, 10)
    model = torch.nn.Sequential(torch.nn.Linear(1000, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    loss_fn = torch.nn.MSELoss(reduction="sum")
    opt = Adam(model.parameters(), lr=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=200, gamma=0.5)  # torch's schedulers work unchanged
    for t in range(500):
        loss = loss_fn(model(x), y)
        if t % 100 == 99:
            print(t, loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()  # one compiled kernel updates every parameter in place
        sched.step()
    print(f"compiled kernels: {opt.compiles} (lr changes never recompile)")


if __name__ == "__main__":
    main()
