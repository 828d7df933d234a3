"""Sparse linear algebra with a fixed pattern, for Rosenbrock steps on large models.

A reaction network's Jacobian is sparse: Chen et al. 2009 (500 states, 827 reactions) has
about 7 nonzeros per row. A Rosenbrock step needs ``J`` and a factorisation of
``W = I/(h*gamma) - J`` at every step; dense, they cost ``n`` directional derivatives of
``f`` and an ``O(n^3)`` elimination (Chen: 8.3 ms and, for the inverse, 8.1 ms a step on
2 cores). Here both follow the pattern, found once before compilation:

- **Jacobian by compression.** Columns that share no row get one colour; one directional
  derivative per colour recovers every entry (Curtis, Powell & Reid 1974, J. Inst. Math.
  Appl. 13:117; the greedy largest-first order of Coleman & Moré 1983, SIAM J. Numer. Anal.
  20:187).
- **LU with a static pivot order.** A minimum-degree ordering of the symmetrised pattern
  (Tinney & Walker 1967; George & Liu 1989) fixes the pivots on the diagonal and the fill;
  the elimination is scheduled by levels of its elimination tree, so each level is one
  gather, multiply and scatter over all its independent pivots, and the triangular solves
  likewise. Diagonal pivots are what KLU prefers for these matrices (Davis & Palamadai
  Natarajan 2010); ``W``'s diagonal ``1/(h*gamma) - J_kk`` is positive wherever a species is
  consumed in its own equation. A factorisation with large growth (entries of ``U`` over
  :data:`MAX_GROWTH` times those of ``W``) or a non-finite entry is reported, and the
  Rosenbrock step is rejected: a smaller step makes ``W`` diagonally dominant.

The pattern is found by evaluating the dense Jacobian at random points (:func:`probe`): an
entry that is zero at every probe is taken to be structurally zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

#: a factorisation whose entries grow past this multiple of W's largest is rejected
MAX_GROWTH = 1e10
#: a reverse-mode row costs about this many forward-mode columns (Chen et al. 2009 on 2 CPU
#: cores: 2 to 5, varying between runs)
REVERSE_COST = 4
#: the dense block at the end of the elimination: at most this many pivots, and none
#: unless it has at least MIN_BLOCK
MAX_BLOCK, MIN_BLOCK = 64, 4


def colour_columns(pattern: np.ndarray) -> np.ndarray:
    """A colour per column of the boolean ``pattern`` such that columns of one colour share
    no row (greedy, columns with most entries first)."""
    n_rows, n_cols = pattern.shape
    colour = np.full(n_cols, -1, dtype=np.int64)
    used: list[np.ndarray] = []  # rows covered by each colour
    for j in np.argsort(-pattern.sum(axis=0), kind="stable"):
        rows = pattern[:, j]
        for c, covered in enumerate(used):
            if not np.any(covered & rows):
                colour[j] = c
                covered |= rows
                break
        else:
            colour[j] = len(used)
            used.append(rows.copy())
    return colour


def minimum_degree(pattern: np.ndarray):
    """Elimination order of the symmetrised ``pattern`` by minimum degree, with each pivot's
    neighbours still to be eliminated when it is (its column of ``L`` and row of ``U``,
    fill included): ``(order, neighbours)``."""
    n = pattern.shape[0]
    sym = (pattern | pattern.T) & ~np.eye(n, dtype=bool)
    adj = [set(np.nonzero(sym[i])[0].tolist()) for i in range(n)]
    alive = set(range(n))
    order, neighbours = [], []
    while alive:
        v = min(alive, key=lambda i: (len(adj[i]), i))
        nb = adj[v]
        for u in nb:
            adj[u] |= nb
            adj[u].discard(u)
            adj[u].discard(v)
        order.append(v)
        neighbours.append(sorted(nb))
        alive.remove(v)
        adj[v] = set()
    return order, neighbours


def _levels(groups):
    """Indices grouped per level, as int32 arrays (empty levels dropped)."""
    return tuple(tuple(np.asarray(g, dtype=np.int32) for g in level) for level in groups)


@dataclass(frozen=True, eq=False)
class SparseLU:
    """The symbolic LU of ``W = shift * I - J`` for a pattern of ``J`` (``n x n``
    boolean): where each entry of ``J`` (row-major order) and of the diagonal sits in the
    value vector of the factors, and the elimination and the triangular solves as levels of
    independent pivots.

    The elimination tree of a reaction network ends in a chain: its last pivots form a
    dense block, one pivot per level (Chen et al. 2009: the last 36 of 55 levels). Those
    pivots (up to :data:`MAX_BLOCK`) are left to the end as a dense Schur complement,
    inverted with partial pivoting in one operation, and each triangular solve applies it
    in one product (a supernode, in the sense of multifrontal and supernodal codes)."""

    n: int
    size: int  # entries of L + U (fill included)
    w_pos: np.ndarray  # value position of each entry of the pattern, in row-major order
    diag: np.ndarray  # value position of each diagonal entry
    factor_levels: tuple  # per level: (L positions, their pivot's diagonal, target, a, b)
    solve_levels: tuple  # per level: (rows, L positions, columns)
    back_levels: tuple  # per level (highest first): (rows, U positions, columns)
    block: np.ndarray  # the pivots of the dense block
    block_pos: np.ndarray  # (block x block) value positions (``size``: structurally zero)

    @classmethod
    def of(cls, pattern: np.ndarray) -> SparseLU:
        n = pattern.shape[0]
        order, neighbours = minimum_degree(pattern)
        pos: dict[tuple[int, int], int] = {}

        def at(i, j):
            return pos.setdefault((i, j), len(pos))

        for i in range(n):
            at(i, i)
        level = np.zeros(n, dtype=np.int64)
        for v, nb in zip(order, neighbours, strict=True):
            for u in nb:
                at(u, v), at(v, u)
                level[u] = max(level[u], level[v] + 1)
            for a in nb:
                for b in nb:
                    at(a, b)
        rows, cols = np.nonzero(pattern)
        w_pos = np.array([pos[(int(i), int(j))] for i, j in zip(rows, cols, strict=True)],
                         dtype=np.int32)
        diag = np.array([pos[(i, i)] for i in range(n)], dtype=np.int32)
        n_levels = int(level.max()) + 1 if n else 0
        per_level = np.bincount(level, minlength=n_levels)
        chain = 0  # trailing levels of one pivot each
        while chain < min(n_levels, MAX_BLOCK) and per_level[n_levels - 1 - chain] == 1:
            chain += 1
        if chain < MIN_BLOCK:
            chain = 0
        first_block_level = n_levels - chain
        block = np.array(sorted((v for v in order if level[v] >= first_block_level),
                                key=lambda v: level[v]), dtype=np.int32)
        fac = [[[], [], [], [], []] for _ in range(first_block_level)]
        fwd = [[[], [], []] for _ in range(first_block_level)]
        back = [[[], [], []] for _ in range(first_block_level)]
        for v, nb in zip(order, neighbours, strict=True):
            if level[v] >= first_block_level:
                continue
            lv = fac[level[v]]
            for u in nb:
                lv[0].append(pos[(u, v)])
                lv[1].append(pos[(v, v)])
                fwd[level[v]][0].append(u)
                fwd[level[v]][1].append(pos[(u, v)])
                fwd[level[v]][2].append(v)
                back[level[v]][0].append(v)
                back[level[v]][1].append(pos[(v, u)])
                back[level[v]][2].append(u)
            for a in nb:
                for b in nb:
                    lv[2].append(pos[(a, b)])
                    lv[3].append(pos[(a, v)])
                    lv[4].append(pos[(v, b)])
        block_pos = np.array([[pos.get((int(a), int(b)), len(pos)) for b in block]
                              for a in block], dtype=np.int32).reshape(block.size, block.size)
        return cls(n=n, size=len(pos), w_pos=w_pos, diag=diag,
                   factor_levels=_levels(lv for lv in fac if lv[0]),
                   solve_levels=_levels(lv for lv in fwd if lv[0]),
                   back_levels=_levels(lv for lv in reversed(back) if lv[0]),
                   block=block, block_pos=block_pos)

    def factor(self, j_values, shift):
        """LU of ``W = shift * I - J`` from ``J``'s entries ``j_values`` (ordered as
        :attr:`w_pos`): ``((values, block inverse), ok)``, with ``U`` scaled to a unit
        diagonal (the values at :attr:`diag` hold the reciprocal pivots, 1 for the block's)
        and ``ok`` false for a factorisation with non-finite entries or growth past
        :data:`MAX_GROWTH`."""
        from .rosenbrock import inverse

        v = jnp.zeros(self.size, j_values.dtype).at[self.w_pos].add(-j_values)
        v = v.at[self.diag].add(shift)
        scale = jnp.max(jnp.abs(v))
        for l_pos, pivot, target, a, b in self.factor_levels:
            v = v.at[l_pos].set(v[l_pos] / v[pivot], unique_indices=True)
            v = v.at[target].add(-v[a] * v[b])
        schur = jnp.concatenate([v, jnp.zeros(1, v.dtype)])[self.block_pos]
        block_inv = inverse(schur) if self.block.size else schur
        d = v[self.diag].at[self.block].set(1.0)
        growth = jnp.max(jnp.abs(v)) / scale  # (the block is pivoted: only finite)
        ok = (jnp.isfinite(growth) & (growth < MAX_GROWTH) & jnp.all(d != 0)
              & jnp.all(jnp.isfinite(block_inv)))
        inv_d = 1.0 / d
        for rows, u_pos, _ in self.back_levels:  # U's rows scaled by their pivot
            v = v.at[u_pos].set(v[u_pos] * inv_d[rows], unique_indices=True)
        return (v.at[self.diag].set(inv_d), block_inv), ok

    def solve(self, lu, b):
        """``W^-1 b`` from :meth:`factor`'s values."""
        v, block_inv = lu
        x = b
        for rows, l_pos, cols in self.solve_levels:
            x = x.at[rows].add(-v[l_pos] * x[cols])
        x = x * v[self.diag]
        if self.block.size:
            x = x.at[self.block].set(block_inv @ x[self.block], unique_indices=True)
        for rows, u_pos, cols in self.back_levels:
            x = x.at[rows].add(-v[u_pos] * x[cols])
        return x


@dataclass(frozen=True, eq=False)
class SparseJacobian:
    """A Jacobian pattern with its compression and symbolic LU.

    ``rows``, ``cols``: the entries of ``J = df/dy`` that may be nonzero. The rows in
    ``reverse`` (those with most entries) come from one reverse-mode product each; the
    other rows from one forward-mode product per ``colour`` of the columns of ``(y, t)``
    (``t`` last, with a colour of its own). A species in many reactions makes both a dense
    row and a dense column; taking its row in reverse mode frees the colouring of the rest
    (Chen et al. 2009: 10 rows and 38 colours instead of 144 colours), a bidirectional
    partial colouring in the sense of Coleman & Verma (1998), SIAM J. Sci. Comput. 19:1210.
    """

    rows: np.ndarray
    cols: np.ndarray
    colour: np.ndarray
    n_colours: int
    reverse: np.ndarray
    take: np.ndarray  # each entry's position in concat(forward products, reverse products)
    lu: SparseLU

    @classmethod
    def of(cls, pattern: np.ndarray, reverse: bool = True) -> SparseJacobian:
        """``reverse``: whether rows may be taken in reverse mode (``f`` supports
        ``jax.vjp``)."""
        n = pattern.shape[0]
        by_count = np.argsort(-pattern.sum(axis=1), kind="stable")
        best = None
        for k in (0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 50) if reverse else (0,):
            if k > n // 2:
                break
            rest = pattern.copy()
            rest[by_count[:k]] = False
            colour = colour_columns(rest)
            cost = REVERSE_COST * k + (int(colour.max()) + 1 if n else 0)
            if best is None or cost < best[0]:
                best = (cost, np.sort(by_count[:k]), colour)
        _, rev, colour = best
        n_fwd = int(colour.max()) + 2 if n else 1  # the y colours and t's
        rows, cols = np.nonzero(pattern)
        slot = np.full(n, -1)
        slot[rev] = np.arange(rev.size)
        take = np.where(slot[rows] >= 0, n * n_fwd + slot[rows] * (n + 1) + cols,
                        rows * n_fwd + colour[cols])
        return cls(rows=rows.astype(np.int32), cols=cols.astype(np.int32),
                   colour=np.append(colour, n_fwd - 1), n_colours=n_fwd,
                   reverse=rev.astype(np.int32), take=take.astype(np.int32),
                   lu=SparseLU.of(pattern))

    def jacobian(self, fz, z):
        """``(values of J at rows, cols; df/dt; f)`` of ``fz(z)``, ``z = (y, t)``: one
        forward-mode product per colour, one reverse-mode product per row in
        :attr:`reverse`."""
        seeds = jax.nn.one_hot(jnp.asarray(self.colour), self.n_colours, dtype=z.dtype)
        f0 = fz(z)
        comp = jax.vmap(lambda s: jax.jvp(fz, (z,), (s,))[1], in_axes=1, out_axes=1)(seeds)
        n = z.shape[0] - 1
        parts = [comp.reshape(-1)]
        if self.reverse.size:
            pull = jax.vjp(fz, z)[1]
            cot = jax.nn.one_hot(jnp.asarray(self.reverse), n, dtype=z.dtype)
            parts.append(jax.vmap(lambda c: pull(c)[0])(cot).reshape(-1))
        values = jnp.concatenate(parts)[self.take]
        return values, comp[:, self.colour[n]], f0

    def factor(self, values, shift):
        return self.lu.factor(values, shift)

    def solve(self, lu, b):
        return self.lu.solve(lu, b)

    def solve_transpose(self, lu, b):
        """``W^-T b`` (the transpose of :meth:`solve`, which is linear in ``b``)."""
        return jax.linear_transpose(lambda x: self.lu.solve(lu, x), b)(b)[0]

    def matvec(self, values, x):
        """``J x`` from the entries ``values``."""
        return jnp.zeros(self.lu.n, x.dtype).at[self.rows].add(values * x[self.cols])


def probe(jac, n_y: int, ys, ps, ts) -> np.ndarray:
    """The union of ``jac(t, y, p) != 0`` (NaN counts as nonzero) over the probe points."""
    pattern = np.zeros((n_y, n_y), dtype=bool)
    for t, y, p in zip(ts, ys, ps, strict=True):
        J = np.asarray(jac(t, y, p))
        pattern |= (J != 0) | ~np.isfinite(J)
    return pattern
