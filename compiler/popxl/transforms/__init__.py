"""popxl.transforms: graph transforms (autodiff)."""
