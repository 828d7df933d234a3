"""All reaction rates of an SBML model in a few vectorised operations.

A large model has hundreds of kinetic laws of a handful of shapes (mass action
``k1*A*B - k2*C``, Michaelis-Menten ``V*S/(K+S)``). Compiled one by one, each law is a few
scalar operations in every copy of the right-hand side, and the compiled program, its
Jacobian and its sensitivities grow with the number of reactions (Chen_MSB2009: 827
reactions, 7353 operations in f). Here laws of the same shape form a group: the shape is
compiled once, with each leaf (a symbol or a number) replaced by a slot, and evaluated once
on vectors gathered from ``concat(y, p, other symbols, numbers)``. The program then grows
with the number of shapes, as in the vectorised mass-action kernels of BioNetGen/RuleBender
and PySB's code generation, without restricting the kinetics: any law the math compiler
accepts is a shape. A law's result is the same expression evaluated on the same values, so
the rates agree with one-by-one evaluation to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import libsbml
import numpy as np

_A = libsbml
#: numbers under these operators are slots (rate constants written as literals); elsewhere
#: (exponents, log bases, piecewise conditions) they stay part of the shape
_SLOTTED_UNDER = {_A.AST_PLUS, _A.AST_MINUS, _A.AST_TIMES, _A.AST_DIVIDE}


def _number(node) -> float:
    return float(node.getInteger() if node.getType() == _A.AST_INTEGER else node.getReal())


def template(ast, names: dict[str, str]):
    """``(key, leaves, shape)`` of a kinetic law: ``key`` identifies its shape, ``leaves``
    lists its slots in order as ``("name", symbol)`` or ``("num", value)``, and ``shape``
    is a copy of the tree with slot ``j`` renamed ``_slot{j}``. ``names`` maps
    reaction-local parameter ids to the model's names for them."""
    shape = ast.deepCopy()
    leaves: list[tuple[str, object]] = []
    key: list[str] = []

    def slot(node, leaf):
        node.setType(_A.AST_NAME)
        node.setName(f"_slot{len(leaves)}")
        leaves.append(leaf)

    def walk(node, parent):
        t = node.getType()
        if t == _A.AST_NAME:
            key.append("N")
            slot(node, ("name", names.get(node.getName(), node.getName())))
            return
        if node.isNumber():
            value = _number(node)
            if parent in _SLOTTED_UNDER:
                key.append("C")
                slot(node, ("num", value))
            else:
                key.append(f"#{value!r}")
            return
        n = node.getNumChildren()
        key.append(f"{t}:{node.getName() if t == _A.AST_FUNCTION else ''}:{n}(")
        for i in range(n):
            walk(node.getChild(i), t)
        key.append(")")

    walk(shape, None)
    return "".join(key), leaves, shape


@dataclass(frozen=True)
class _Slot:
    """Where one slot of a group takes its values: one ``value`` (a number or a symbol)
    shared by the whole group, or ``index``, the group's positions in the gathered
    vector."""

    value: object = None
    symbol: str | None = None
    index: np.ndarray | None = None


class _GroupEnv:
    """The environment a group's shape is evaluated in: the time and its slots."""

    def __init__(self, t, slots):
        self.t, self.slots = t, slots


#: the fewest laws of one shape that are evaluated as a vector. Below it the scalar
#: operations, which XLA fuses into one loop, are faster and compile in time: on the PEtab
#: collection, vectorising every shape (at most 25 laws each) made gradients 1.4-1.8 times
#: slower (Alkan 7.9 to 14.6 s, Bachmann 3.6 to 5.1 s, Lucarelli 8.9 to 12.5 s), while
#: Chen_MSB2009's shapes of 684 and 130 mass-action laws compile only as vectors.
MIN_GROUP = 64


class RateTable:
    """The rates of the reactions in ``laws`` (``(reaction id, AST, local names)``) whose
    shape is shared by at least ``min_group`` laws, in one vector (:attr:`order`).

    ``compile(shape, where, local)`` compiles a shape with its slots bound by ``local``;
    ``kinds`` gives each symbol's kind (``state`` / ``param`` / other) and index, and
    ``n_states``, ``n_params`` the lengths of ``y`` and ``p``.
    """

    def __init__(self, laws, compile, kinds: dict[str, tuple[str, int]], n_states: int,
                 n_params: int, min_group: int = MIN_GROUP):
        groups: dict[str, list] = {}
        for rid, ast, names in laws:
            key, leaves, shape = template(ast, names)
            groups.setdefault(key, []).append((rid, leaves, shape))
        groups = {k: g for k, g in groups.items() if len(g) >= min_group}
        self.order: list[str] = []
        self.extras: list[str] = []  # symbols gathered that are neither states nor params
        numbers: dict[float, int] = {}
        self._groups = []
        for members in groups.values():
            rids = [rid for rid, _, _ in members]
            self.order.extend(rids)
            slots = []
            for j in range(len(members[0][1])):
                column = [leaves[j] for _, leaves, _ in members]
                if all(c == column[0] for c in column):
                    kind, value = column[0]
                    slots.append(_Slot(value=value) if kind == "num" else _Slot(symbol=value))
                    continue
                index = []
                for kind, value in column:
                    if kind == "num":
                        index.append(("num", numbers.setdefault(value, len(numbers))))
                    elif kinds[value][0] in ("state", "param"):
                        index.append(kinds[value])
                    else:
                        if value not in self.extras:
                            self.extras.append(value)
                        index.append(("extra", self.extras.index(value)))
                slots.append(_Slot(index=index))
            rid, _, shape = members[0]
            local = {f"_slot{j}": (lambda env, j=j: env.slots[j]) for j in range(len(slots))}
            fn = compile(shape, f"kinetic law of reaction {rid!r}", local)
            self._groups.append((fn, slots, len(members)))
        self.numbers = np.array(list(numbers), dtype=np.float64)
        self.position = {rid: i for i, rid in enumerate(self.order)}
        # the slots' (kind, index) positions as indices of concat(y, p, extras, numbers),
        # now that the extras are known
        offsets = {"state": 0, "param": n_states, "extra": n_states + n_params,
                   "num": n_states + n_params + len(self.extras)}
        for _, slots, _ in self._groups:
            for i, slot in enumerate(slots):
                if slot.index is not None:
                    slots[i] = _Slot(index=np.array([offsets[k] + j for k, j in slot.index],
                                                    dtype=np.int32))

    def rates(self, env, y, p):
        """The rate vector at ``env`` (the model's environment), with states ``y`` and
        parameters ``p`` as 1-d arrays."""
        gathered = None
        if any(s.index is not None for _, slots, _ in self._groups for s in slots):
            extras = [jnp.asarray(env[name], jnp.float64) for name in self.extras]
            gathered = jnp.concatenate([jnp.asarray(y, jnp.float64),
                                        jnp.asarray(p, jnp.float64),
                                        jnp.stack(extras) if extras else jnp.zeros(0),
                                        jnp.asarray(self.numbers)])
        out = []
        for fn, slots, n in self._groups:
            values = [s.value if s.symbol is None and s.index is None
                      else env[s.symbol] if s.index is None else gathered[s.index]
                      for s in slots]
            r = jnp.asarray(fn(_GroupEnv(env.t, values)), jnp.float64)
            out.append(jnp.broadcast_to(r, (n,)))
        return jnp.concatenate(out) if out else jnp.zeros(0)
