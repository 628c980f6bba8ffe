"""popxl.errors."""


class UndefinedValue(Exception):
    """A tensor property that has no value yet (PopXL: a variable's ipu or tile set before any op uses it)."""
