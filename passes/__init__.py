"""Graph passes: each a function `run(ir) -> changed`, registered by name."""
