"""Array type aliases shared across the package (jaxtyping)."""

from jaxtyping import Array, ArrayLike, Bool, Float, Int

Scalar = Float[Array, ""]
Vector = Float[Array, " n"]
Times = Float[ArrayLike, " n_times"]

__all__ = ["Array", "ArrayLike", "Bool", "Float", "Int", "Scalar", "Vector", "Times"]
