"""PEtab formulas compiled into JAX functions.

A formula is parsed with PEtab's own grammar (:func:`petab.v1.math.sympify_petab`) into a
sympy tree, and the tree is walked here into nested Python closures of ``jax.numpy``
operations. No text is evaluated as Python source (no ``eval``, ``exec`` or
``sympy.lambdify``). The resulting :class:`Formula` is called with a mapping from symbol
names to values (numbers or arrays, broadcast together) and returns the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jax.numpy as jnp
import sympy as sp

from ..errors import InputError, quoted

__all__ = ["Formula", "parse_formula"]

Fn = Callable[[Mapping], object]

_UNARY = {
    sp.exp: jnp.exp, sp.log: jnp.log, sp.sin: jnp.sin, sp.cos: jnp.cos, sp.tan: jnp.tan,
    sp.asin: jnp.arcsin, sp.acos: jnp.arccos, sp.atan: jnp.arctan, sp.sinh: jnp.sinh,
    sp.cosh: jnp.cosh, sp.tanh: jnp.tanh, sp.asinh: jnp.arcsinh, sp.acosh: jnp.arccosh,
    sp.atanh: jnp.arctanh, sp.Abs: jnp.abs, sp.floor: jnp.floor, sp.ceiling: jnp.ceil,
    sp.sign: jnp.sign, sp.sec: lambda x: 1 / jnp.cos(x), sp.csc: lambda x: 1 / jnp.sin(x),
    sp.cot: lambda x: 1 / jnp.tan(x),
}
_RELATIONS = {
    sp.StrictGreaterThan: jnp.greater, sp.GreaterThan: jnp.greater_equal,
    sp.StrictLessThan: jnp.less, sp.LessThan: jnp.less_equal,
    sp.Equality: jnp.equal, sp.Unequality: jnp.not_equal,
}
_TIME = ("t", "time")


@dataclass(frozen=True)
class Formula:
    """A compiled formula: ``text`` as given, ``symbols`` it reads, ``fn(env)`` its value."""

    text: str
    symbols: frozenset[str]
    fn: Fn

    def __call__(self, env: Mapping):
        return self.fn(env)

    @property
    def is_constant(self) -> bool:
        return not self.symbols


def parse_formula(text, where: str = "formula") -> Formula:
    """Parse a PEtab formula (text or number) into a :class:`Formula`.

    ``where`` names the place (file, row, column) for error messages. Raises
    :class:`~scalebridge.errors.InputError` when the text is not a valid PEtab formula or
    uses a function that is not supported.
    """
    from petab.v1.math import sympify_petab

    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
        return Formula(repr(value), frozenset(), lambda env: value)
    text = str(text).strip()
    if not text:
        raise InputError(f"{where}: the formula is empty")
    try:
        expr = sympify_petab(text)
    except Exception as exc:  # petab raises ValueError for syntax errors
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{where}: cannot parse formula {quoted(text)}: {msg}") from None
    names = frozenset(s.name for s in expr.free_symbols)
    try:
        fn = _compile(expr, text, where)
    except RecursionError:
        raise InputError(f"{where}: formula {quoted(text)} is nested too deeply to "
                         "evaluate; simplify it") from None
    return Formula(text, names, fn)




def _compile(e, text: str, where: str) -> Fn:
    def bad(what):
        return InputError(f"{where}: formula {quoted(text)} uses {what}, which is not supported")

    if isinstance(e, sp.Symbol):
        name = e.name

        def symbol(env):
            try:
                return env[name]
            except KeyError:
                raise InputError(f"{where}: formula {quoted(text)} refers to {name!r}, which is "
                                 "not a state, observable, parameter or placeholder") from None
        return symbol
    if e is sp.true or e is sp.S.true:
        return lambda env: True
    if e is sp.false or e is sp.S.false:
        return lambda env: False
    if e.is_Number or e.is_NumberSymbol:
        try:
            value = float(e)
        except TypeError:
            raise bad(f"the non-real number {e}") from None
        return lambda env: value
    if isinstance(e, sp.Piecewise):
        pieces = [(_compile(v, text, where), _compile(c, text, where)) for v, c in e.args]

        def piecewise(env):
            out = jnp.nan
            for value, cond in reversed(pieces):
                out = jnp.where(cond(env), value(env), out)
            return out
        return piecewise
    args = [_compile(a, text, where) for a in e.args]
    if isinstance(e, sp.Add):
        def add(env):
            out = args[0](env)
            for a in args[1:]:
                out = out + a(env)
            return out
        return add
    if isinstance(e, sp.Mul):
        def mul(env):
            out = args[0](env)
            for a in args[1:]:
                out = out * a(env)
            return out
        return mul
    if isinstance(e, sp.Pow):
        base, expo = args
        ex = e.args[1]
        if ex.is_Number and float(ex) == int(float(ex)) and abs(float(ex)) <= 64:
            n = int(float(ex))
            if n == -1:
                return lambda env: 1.0 / base(env)
            return lambda env: jnp.asarray(base(env), dtype=float) ** n
        if ex.is_Number and float(ex) == 0.5:
            return lambda env: jnp.sqrt(base(env))
        return lambda env: jnp.power(base(env), expo(env))
    if e.func in _UNARY and len(args) == 1:
        f, a = _UNARY[e.func], args[0]
        return lambda env: f(a(env))
    if isinstance(e, sp.log) and len(args) == 2:
        a, b = args
        return lambda env: jnp.log(a(env)) / jnp.log(b(env))
    if e.func in _RELATIONS:
        f, (a, b) = _RELATIONS[e.func], args
        return lambda env: f(a(env), b(env))
    if isinstance(e, sp.And):
        return lambda env: _fold(jnp.logical_and, [a(env) for a in args])
    if isinstance(e, sp.Or):
        return lambda env: _fold(jnp.logical_or, [a(env) for a in args])
    if isinstance(e, sp.Xor):
        return lambda env: _fold(jnp.logical_xor, [a(env) for a in args])
    if isinstance(e, sp.Not):
        return lambda env: jnp.logical_not(args[0](env))
    if isinstance(e, sp.Max | sp.Min):
        f = jnp.maximum if isinstance(e, sp.Max) else jnp.minimum
        return lambda env: _fold(f, [a(env) for a in args])
    if e.func.__name__ in ("boolean_true", "BooleanTrue"):
        return lambda env: True
    raise bad(f"the function {e.func.__name__}")


def _fold(f, values):
    out = values[0]
    for v in values[1:]:
        out = f(out, v)
    return out


def time_symbols() -> tuple[str, ...]:
    """Names that stand for simulation time in formulas."""
    return _TIME

