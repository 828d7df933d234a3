"""Compile libsbml math (ASTNode trees) into JAX closures.

A compiled expression is a function ``f(env)`` where ``env.t`` is the time and ``env[name]``
the value of an SBML symbol. Nothing from the file is evaluated as Python source: the tree is
walked node by node and each node type maps to a fixed JAX operation. Function definitions are
inlined at compile time by binding their arguments to the compiled argument expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import libsbml

from ..errors import SBMLError

Expr = Callable[[object], object]

_A = libsbml

_UNARY: dict[int, Callable] = {
    _A.AST_FUNCTION_ABS: jnp.abs,
    _A.AST_FUNCTION_EXP: jnp.exp,
    _A.AST_FUNCTION_LN: jnp.log,
    _A.AST_FUNCTION_FLOOR: jnp.floor,
    _A.AST_FUNCTION_CEILING: jnp.ceil,
    _A.AST_FUNCTION_FACTORIAL: jsp.factorial,
    _A.AST_FUNCTION_SIN: jnp.sin,
    _A.AST_FUNCTION_COS: jnp.cos,
    _A.AST_FUNCTION_TAN: jnp.tan,
    _A.AST_FUNCTION_SEC: lambda x: 1.0 / jnp.cos(x),
    _A.AST_FUNCTION_CSC: lambda x: 1.0 / jnp.sin(x),
    _A.AST_FUNCTION_COT: lambda x: 1.0 / jnp.tan(x),
    _A.AST_FUNCTION_SINH: jnp.sinh,
    _A.AST_FUNCTION_COSH: jnp.cosh,
    _A.AST_FUNCTION_TANH: jnp.tanh,
    _A.AST_FUNCTION_SECH: lambda x: 1.0 / jnp.cosh(x),
    _A.AST_FUNCTION_CSCH: lambda x: 1.0 / jnp.sinh(x),
    _A.AST_FUNCTION_COTH: lambda x: 1.0 / jnp.tanh(x),
    _A.AST_FUNCTION_ARCSIN: jnp.arcsin,
    _A.AST_FUNCTION_ARCCOS: jnp.arccos,
    _A.AST_FUNCTION_ARCTAN: jnp.arctan,
    _A.AST_FUNCTION_ARCSEC: lambda x: jnp.arccos(1.0 / x),
    _A.AST_FUNCTION_ARCCSC: lambda x: jnp.arcsin(1.0 / x),
    _A.AST_FUNCTION_ARCCOT: lambda x: jnp.arctan(1.0 / x),
    _A.AST_FUNCTION_ARCSINH: jnp.arcsinh,
    _A.AST_FUNCTION_ARCCOSH: jnp.arccosh,
    _A.AST_FUNCTION_ARCTANH: jnp.arctanh,
    _A.AST_FUNCTION_ARCSECH: lambda x: jnp.arccosh(1.0 / x),
    _A.AST_FUNCTION_ARCCSCH: lambda x: jnp.arcsinh(1.0 / x),
    _A.AST_FUNCTION_ARCCOTH: lambda x: jnp.arctanh(1.0 / x),
    _A.AST_LOGICAL_NOT: lambda x: jnp.logical_not(_truth(x)),
}

_BINARY: dict[int, Callable] = {
    _A.AST_DIVIDE: jnp.divide,
    _A.AST_POWER: jnp.power,
    _A.AST_FUNCTION_POWER: jnp.power,
    _A.AST_FUNCTION_REM: jnp.fmod,
    _A.AST_FUNCTION_QUOTIENT: lambda a, b: jnp.trunc(a / b),
    _A.AST_LOGICAL_IMPLIES: lambda a, b: jnp.logical_or(jnp.logical_not(_truth(a)), _truth(b)),
}

_RELATIONAL: dict[int, Callable] = {
    _A.AST_RELATIONAL_EQ: jnp.equal,
    _A.AST_RELATIONAL_NEQ: jnp.not_equal,
    _A.AST_RELATIONAL_GT: jnp.greater,
    _A.AST_RELATIONAL_GEQ: jnp.greater_equal,
    _A.AST_RELATIONAL_LT: jnp.less,
    _A.AST_RELATIONAL_LEQ: jnp.less_equal,
}

_CONSTANTS = {
    _A.AST_CONSTANT_E: jnp.e,
    _A.AST_CONSTANT_PI: jnp.pi,
    _A.AST_CONSTANT_TRUE: True,
    _A.AST_CONSTANT_FALSE: False,
}

# relations as trigger functions: sign * (left - right) is positive where they hold
_RISING = {
    _A.AST_RELATIONAL_GT: 1.0,
    _A.AST_RELATIONAL_GEQ: 1.0,
    _A.AST_RELATIONAL_LT: -1.0,
    _A.AST_RELATIONAL_LEQ: -1.0,
}

#: Avogadro's number as libroadrunner uses it (the SBML L3V1 value).
AVOGADRO = 6.02214179e23


def _truth(x):
    x = jnp.asarray(x)
    return x if x.dtype == jnp.bool_ else x != 0


def _float(x):
    return jnp.asarray(x, dtype=jnp.float64)


def _select(cond, a, b):
    """``where(cond, a, b)``; a bare select where shapes and types agree (``jnp.where`` is a
    nested program with a conversion, in every copy of the right-hand side)."""
    cond, a, b = _truth(cond), jnp.asarray(a), jnp.asarray(b)
    a, b = (x.astype(jnp.float64) if x.dtype != jnp.bool_ else x for x in (a, b))
    if a.dtype != b.dtype:
        return jnp.where(cond, a, b)
    shape = jnp.broadcast_shapes(cond.shape, a.shape, b.shape)
    return jax.lax.select(*(jnp.broadcast_to(x, shape) for x in (cond, a, b)))


def _xor(a, b):
    """Trigger function of ``xor`` from those of its arguments: (a and not b) or (b and not
    a)."""
    return jnp.maximum(jnp.minimum(a, -b), jnp.minimum(-a, b))


def _fold(fn, xs):
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out


def formula(ast) -> str:
    """The infix (SBML L3) text of a math tree, for messages."""
    return libsbml.formulaToL3String(ast) if ast is not None else "<none>"


def names_in(ast) -> list[str]:
    """The symbol names a math tree refers to, in order of first appearance."""
    out: list[str] = []
    if ast is None:
        return out
    if ast.getType() == _A.AST_NAME and ast.getName() not in out:
        out.append(ast.getName())
    for i in range(ast.getNumChildren()):
        out.extend(n for n in names_in(ast.getChild(i)) if n not in out)
    return out


class MathCompiler:
    """Compiles ASTs given the model's function definitions and a symbol resolver.

    ``functions`` maps a function id to ``(argument names, body AST)``; ``resolve(name,
    where)`` returns the expression of a model symbol or raises :class:`SBMLError`.
    """

    def __init__(self, functions: Mapping[str, tuple[tuple[str, ...], object]],
                 resolve: Callable[[str, str], Expr],
                 rate_of: Callable[[str, str], Expr] | None = None):
        self.functions = dict(functions)
        self.resolve = resolve
        self.rate_of = rate_of

    def compile(self, ast, where: str, local: Mapping[str, Expr] | None = None) -> Expr:
        """Compile ``ast``; ``where`` names the SBML element for messages; ``local`` binds
        names (function arguments, reaction-local parameters) ahead of model symbols."""
        if ast is None:
            raise SBMLError(f"{where}: has no math; give it a MathML expression")
        return self._node(ast, where, dict(local or {}), ())

    # ----- one node --------------------------------------------------------------------
    def _node(self, ast, where, local, stack) -> Expr:
        t = ast.getType()
        kids = [ast.getChild(i) for i in range(ast.getNumChildren())]
        if ast.isNumber():
            value = float(ast.getInteger() if t == _A.AST_INTEGER else ast.getReal())
            return lambda env: value
        if t in _CONSTANTS:
            value = _CONSTANTS[t]
            return lambda env: value
        if t == _A.AST_NAME_TIME:
            return lambda env: env.t
        if t == _A.AST_NAME_AVOGADRO:
            return lambda env: AVOGADRO
        if t == _A.AST_NAME:
            name = ast.getName()
            return local[name] if name in local else self.resolve(name, where)
        if t == _A.AST_FUNCTION:
            return self._call(ast, kids, where, local, stack)
        if t == _A.AST_FUNCTION_DELAY:
            raise SBMLError(f"{where}: uses delay() ({formula(ast)}); delay differential "
                            "equations are not supported")
        if t == _A.AST_FUNCTION_PIECEWISE:
            return self._piecewise(kids, where, local, stack)
        if t == _A.AST_FUNCTION_RATE_OF and self.rate_of is not None:
            if len(kids) != 1 or kids[0].getType() != _A.AST_NAME:
                raise SBMLError(f"{where}: rateOf takes one model symbol, got "
                                f"{formula(ast)!r}")
            if kids[0].getName() in local:  # a reaction-local parameter: constant
                return lambda env: 0.0
            return self.rate_of(kids[0].getName(), where)
        args = [self._node(k, where, local, stack) for k in kids]
        return self._operator(ast, t, args, where)

    def _operator(self, ast, t, args, where) -> Expr:
        n = len(args)
        if t == _A.AST_PLUS:
            return (lambda env: 0.0) if n == 0 else _nary(jnp.add, args)
        if t == _A.AST_TIMES:
            return (lambda env: 1.0) if n == 0 else _nary(jnp.multiply, args)
        if t == _A.AST_MINUS and n == 1:
            (a,) = args
            return lambda env: -a(env)
        if t == _A.AST_MINUS and n == 2:
            a, b = args
            return lambda env: a(env) - b(env)
        if t in (_A.AST_FUNCTION_LOG, _A.AST_FUNCTION_ROOT):
            return _log_or_root(t, args)
        if t in _UNARY and n == 1:
            fn, (a,) = _UNARY[t], args
            return lambda env: fn(a(env))
        if t in _BINARY and n == 2:
            fn, (a, b) = _BINARY[t], args
            return lambda env: fn(a(env), b(env))
        if t in _RELATIONAL and n >= 2:
            return _chain(_RELATIONAL[t], args)
        if t in (_A.AST_LOGICAL_AND, _A.AST_LOGICAL_OR, _A.AST_LOGICAL_XOR):
            return _logical(t, args)
        if t in (_A.AST_FUNCTION_MAX, _A.AST_FUNCTION_MIN) and n >= 1:
            return _nary(jnp.maximum if t == _A.AST_FUNCTION_MAX else jnp.minimum, args)
        if t == _A.AST_FUNCTION_RATE_OF:
            raise SBMLError(f"{where}: uses rateOf ({formula(ast)}), which is not supported; "
                            "write the rate expression out instead")
        raise SBMLError(f"{where}: the MathML construct in {formula(ast)!r} (type "
                        f"{ast.getName() or t}, {n} arguments) is not supported")

    def _piecewise(self, kids, where, local, stack) -> Expr:
        parts = [self._node(k, where, local, stack) for k in kids]
        pairs = list(zip(parts[0:-1:2], parts[1::2], strict=False))
        otherwise = parts[-1] if len(parts) % 2 else (lambda env: jnp.nan)

        def f(env):
            out = otherwise(env)
            for value, cond in reversed(pairs):
                out = _select(cond(env), value(env), out)
            return out

        return f

    # ----- triggers ---------------------------------------------------------------------
    def trigger(self, ast, where: str) -> Expr:
        """Compile a boolean trigger into a continuous ``g(env)`` whose sign is its truth
        (positive: true), so that the trigger turns true where ``g`` crosses zero upwards.

        ``a > b``, ``a >= b`` give ``a - b``; ``a < b``, ``a <= b`` give ``b - a`` (chained
        relations: the minimum over adjacent pairs); ``and`` / ``or`` the minimum / maximum
        of their arguments; ``not x`` gives ``-g_x``; ``xor`` and ``implies`` are built from
        these; ``true`` / ``false`` give +1 / -1; function definitions are inlined. Other
        forms (``==``, ``!=``, piecewise, numbers, names) raise :class:`SBMLError`.
        """
        return self.trigger_parts(ast, where)[0]

    def trigger_parts(self, ast, where: str) -> tuple[Expr, list[Expr]]:
        """:meth:`trigger`'s ``g`` and the relations it combines (each ``sign * (a - b)``),
        whose zeros are the only places the trigger's truth can change."""
        if ast is None:
            raise SBMLError(f"{where}: has no math; give it a MathML expression")
        found: list[Expr] = []
        return self._rising(ast, where, {}, (), found), found

    def _rising(self, ast, where, local, stack, found) -> Expr:
        t = ast.getType()
        kids = [ast.getChild(i) for i in range(ast.getNumChildren())]
        n = len(kids)
        if t in (_A.AST_CONSTANT_TRUE, _A.AST_CONSTANT_FALSE):
            value = 1.0 if t == _A.AST_CONSTANT_TRUE else -1.0
            return lambda env: value
        if t in _RISING and n >= 2:
            args = [self._node(k, where, local, stack) for k in kids]
            sign = _RISING[t]
            pairs = [(lambda env, a=a, b=b: sign * (_float(a(env)) - _float(b(env))))
                     for a, b in zip(args, args[1:], strict=False)]
            found += pairs
            return _nary(jnp.minimum, pairs)
        if t == _A.AST_FUNCTION:
            return self._call(ast, kids, where, local, stack,
                              lambda *a: self._rising(*a, found))
        logical = (_A.AST_LOGICAL_AND, _A.AST_LOGICAL_OR, _A.AST_LOGICAL_NOT,
                   _A.AST_LOGICAL_IMPLIES, _A.AST_LOGICAL_XOR)
        gs = [self._rising(k, where, local, stack, found) for k in kids] \
            if t in logical else []
        if t in (_A.AST_LOGICAL_AND, _A.AST_LOGICAL_OR):
            if not gs:  # and() is true, or() false
                value = 1.0 if t == _A.AST_LOGICAL_AND else -1.0
                return lambda env: value
            return _nary(jnp.minimum if t == _A.AST_LOGICAL_AND else jnp.maximum, gs)
        if t == _A.AST_LOGICAL_NOT and n == 1:
            (g,) = gs
            return lambda env: -g(env)
        if t == _A.AST_LOGICAL_IMPLIES and n == 2:
            a, b = gs
            return lambda env: jnp.maximum(-a(env), b(env))
        if t == _A.AST_LOGICAL_XOR:  # xor() is false
            return (lambda env: _fold(_xor, [g(env) for g in gs])) if gs else \
                (lambda env: -1.0)
        raise SBMLError(f"{where}: the trigger form {formula(ast)!r} is not supported; "
                        "write the trigger with <, <=, >, >= combined by and, or, not, xor, "
                        "implies (== and != never cross a threshold)")

    def _call(self, ast, kids, where, local, stack, walk=None) -> Expr:
        """Inline a function definition: its body compiled by ``walk`` (default: as math)
        with the arguments bound to the compiled argument expressions."""
        walk = walk or self._node
        name = ast.getName()
        if name not in self.functions:
            raise SBMLError(f"{where}: calls {name!r}, which is no function definition of "
                            "the model; define it in listOfFunctionDefinitions")
        if name in stack:
            raise SBMLError(f"function definition {name!r} calls itself (via "
                            f"{' -> '.join(stack)}); recursion is not allowed in SBML")
        params, body = self.functions[name]
        if len(params) != len(kids):
            raise SBMLError(f"{where}: calls {name!r} with {len(kids)} arguments; its "
                            f"definition takes {len(params)} ({', '.join(params)})")
        bound = dict(local)
        bound.update(zip(params, (self._node(k, where, local, stack) for k in kids),
                         strict=True))
        return walk(body, f"function definition {name!r}", bound, (*stack, name))


def _nary(fn, args) -> Expr:
    if len(args) == 1:
        return args[0]
    return lambda env: _fold(fn, [a(env) for a in args])


def _chain(fn, args) -> Expr:
    def f(env):
        vals = [a(env) for a in args]
        return _fold(jnp.logical_and, [fn(x, y) for x, y in zip(vals, vals[1:], strict=False)])

    return f


def _logical(t, args) -> Expr:
    if not args:
        empty = t == _A.AST_LOGICAL_AND
        return lambda env: empty
    fn = {_A.AST_LOGICAL_AND: jnp.logical_and, _A.AST_LOGICAL_OR: jnp.logical_or,
          _A.AST_LOGICAL_XOR: jnp.logical_xor}[t]
    return lambda env: _fold(fn, [_truth(a(env)) for a in args])


def _log_or_root(t, args) -> Expr:
    """log(base, x) / root(degree, x); libsbml inserts base 10 and degree 2 when absent."""
    if len(args) == 1:
        default = 10.0 if t == _A.AST_FUNCTION_LOG else 2.0
        args = [lambda env: default, args[0]]
    base, x = args
    if t == _A.AST_FUNCTION_LOG:
        return lambda env: jnp.log(x(env)) / jnp.log(base(env))
    return lambda env: jnp.power(x(env), 1.0 / base(env))
