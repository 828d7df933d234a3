"""Rosenbrock (Rodas) methods for stiff ODEs, written for batched ensembles.

One step of a Rodas method in the transformed form of Hairer & Wanner (1996), *Solving
Ordinary Differential Equations II*, Sect. IV.7, eq. (7.25): with ``W = I/(h*gamma) - J``,

    W u_i = f(t + c_i h, y + sum_j a_ij u_j) + sum_j (C_ij / h) u_j + h d_i f_t,

and, the methods being stiffly accurate, ``y_new = y + sum_j a_sj u_j + u_s`` with the
embedded error estimate ``u_s``. ``J`` and ``f_t`` are exact and ``W`` is factorised once
per step, by :class:`Dense` (``jax.jacfwd`` and :func:`inverse`: unrolled Gauss-Jordan
elimination up to 16 states, LAPACK above) or, for large sparse models, by
:class:`scalebridge.solvers.sparse.SparseJacobian` (decision 0024). Forward derivatives go
through the step's own rule (:func:`_step_jvp`), which reuses that factorisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Tableau:
    """Coefficients of a stiffly accurate Rosenbrock method in transformed form."""

    name: str
    gamma: float
    A: tuple[tuple[float, ...], ...]
    C: tuple[tuple[float, ...], ...]
    c: tuple[float, ...]
    d: tuple[float, ...]
    order: int  # order of the embedded (error) solution + 1 = order of the method

    @property
    def stages(self) -> int:
        return len(self.c)


def _rows(text: str) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in line.split()) for line in text.strip().splitlines())


# Rodas5: Di Marzo (1993), "RODAS5(4) - Méthodes de Rosenbrock d'ordre 5(4) adaptées aux
# problèmes différentiels-algébriques", Univ. Geneva; coefficients in the transformed form
# as used by Hairer's RODAS code and by OrdinaryDiffEq.jl's Rodas5.
RODAS5 = Tableau(
    name="Rodas5",
    gamma=0.19,
    A=_rows("""
        0 0 0 0 0 0 0 0
        2.0 0 0 0 0 0 0 0
        3.040894194418781 1.041747909077569 0 0 0 0 0 0
        2.576417536461461 1.622083060776640 -0.9089668560264532 0 0 0 0 0
        2.760842080225597 1.446624659844071 -0.3036980084553738 0.2877498600325443 0 0 0 0
        -14.09640773051259 6.925207756232704 -41.47510893210728 2.343771018586405 24.13215229196062 0 0 0
        -14.09640773051259 6.925207756232704 -41.47510893210728 2.343771018586405 24.13215229196062 1 0 0
        -14.09640773051259 6.925207756232704 -41.47510893210728 2.343771018586405 24.13215229196062 1 1 0
    """),  # noqa: E501
    C=_rows("""
        0 0 0 0 0 0 0 0
        -10.31323885133993 0 0 0 0 0 0 0
        -21.04823117650003 -7.234992135176716 0 0 0 0 0 0
        32.22751541853323 -4.943732386540191 19.44922031041879 0 0 0 0 0
        -20.69865579590063 -8.816374604402768 1.260436877740897 -0.7495647613787146 0 0 0 0
        -46.22004352711257 -17.49534862857472 -289.6389582892057 93.60855400400906 318.3822534212147 0 0 0
        34.20013733472935 -14.15535402717690 57.82335640988400 25.83362985412365 1.408950972071624 -6.551835421242162 0 0
        42.57076742291101 -13.80770672017997 93.98938432427124 18.77919633714503 -31.58359187223370 -6.685968952921985 -5.810979938412932 0
    """),  # noqa: E501
    c=(0.0, 0.38, 0.3878509998321533, 0.4839718937873840, 0.4570477008819580, 1.0, 1.0, 1.0),
    d=(0.19, -0.1823079225333714636, -0.319231832186874912, 0.3449828624725343,
       -0.377417564392089818, 0.0, 0.0, 0.0),
    order=5,
)

# Rodas4: Hairer & Wanner (1996), Sect. VI.4, Table 4.3 (the RODAS code).
RODAS4 = Tableau(
    name="Rodas4",
    gamma=0.25,
    A=_rows("""
        0 0 0 0 0 0
        1.544 0 0 0 0 0
        0.9466785280815826 0.2557011698983284 0 0 0 0
        3.314825187068521 2.896124015972201 0.9986419139977817 0 0 0
        1.221224509226641 6.019134481288629 12.53708332932087 -0.6878860361058950 0 0
        1.221224509226641 6.019134481288629 12.53708332932087 -0.6878860361058950 1 0
    """),
    C=_rows("""
        0 0 0 0 0 0
        -5.6688 0 0 0 0 0
        -2.430093356833875 -0.2063599157091915 0 0 0 0
        -0.1073529058151375 -9.594562251023355 -20.47028614809616 0 0 0
        7.496443313967647 -10.24680431464352 -33.99990352819905 11.70890893206160 0 0
        8.083246795921522 -7.981132988064893 -31.52159432874371 16.31930543123136 -6.058818238834054 0
    """),  # noqa: E501
    c=(0.0, 0.386, 0.21, 0.63, 1.0, 1.0),
    d=(0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0),
    order=4,
)


def inverse(W):
    """Inverse of a small matrix with partial pivoting.

    Up to 16 rows: Gauss-Jordan elimination, unrolled and written with one-hot masks instead
    of dynamic indexing so that ``jax.vmap`` turns it into elementwise vector operations
    across the batch (faster than LAPACK there: 14 against 25 us for 16 matrices of 8 x 8).
    Above: LAPACK (``jnp.linalg.inv``; for 16 matrices of 25 x 25 it takes 0.23 ms per
    call inside a loop, where the elimination loop takes 1.1 ms).
    """
    n = W.shape[0]
    if n > 16:
        return jnp.linalg.inv(W)
    rows = jnp.arange(n)
    M = jnp.concatenate([W, jnp.eye(n, dtype=W.dtype)], axis=1)

    def eliminate(k, M):
        col = jnp.where(rows >= k, jnp.abs(M[:, k]), -1.0)
        hot_p = (rows == jnp.argmax(col))[:, None]
        rk = M[k]
        rp = jnp.sum(jnp.where(hot_p, M, 0.0), axis=0)
        M = jnp.where(hot_p, rk[None, :], M)  # swap rows k and the pivot row
        rk_new = rp / rp[k]
        M = M - M[:, k][:, None] * rk_new[None, :]
        return M.at[k].set(rk_new)

    for k in range(n):
        M = eliminate(k, M)
    return M[:, n:]


def _matvec(M, v):
    return jnp.sum(M * v[None, :], axis=1)


class Dense:
    """Dense linear algebra for a Rosenbrock step: ``J`` by ``jax.jacfwd`` and ``W^-1`` by
    :func:`inverse`. :class:`scalebridge.solvers.sparse.SparseJacobian` has the same four
    methods for large sparse models."""

    @staticmethod
    def jacobian(fz, z):
        """``(J, df/dt, f)`` of ``fz`` at ``z = (y, t)``."""
        def both(z):
            out = fz(z)
            return out, out

        jz, f0 = jax.jacfwd(both, has_aux=True)(z)
        return jz[:, :-1], jz[:, -1], f0

    @staticmethod
    def factor(J, shift):
        """``(W^-1, ok)`` for ``W = shift * I - J``."""
        return inverse(jnp.eye(J.shape[0], dtype=J.dtype) * shift - J), True

    @staticmethod
    def solve(Winv, b):
        return _matvec(Winv, b)

    @staticmethod
    def solve_transpose(Winv, b):
        """``W^-T b``."""
        return _matvec(Winv.T, b)

    @staticmethod
    def matvec(J, x):
        return J @ x


DENSE = Dense()


def _tableau_arrays(tab: Tableau, dtype):
    return tuple(jnp.asarray(v, dtype) for v in (tab.A, tab.C, tab.c, tab.d))


def _stages(tab: Tableau, f, linear, t, y, p, h, t_cap, consts, looped: bool):
    """The step: ``(y_new, error, f(t, y), (U, Winv, J, f_t))`` with the stage vectors ``U``
    (one row per stage). ``looped``: the stages run in a ``lax.fori_loop`` with one copy of
    ``f`` in the program (compiles fast for large right-hand sides) instead of unrolled."""
    n, s = y.shape[0], tab.stages

    def fz(z):
        return f(z[n], z[:n], p, *consts)

    J, ft, f0 = linear.jacobian(fz, jnp.concatenate([y, jnp.reshape(t, (1,))]))
    Winv, ok = linear.factor(J, 1.0 / (h * tab.gamma))
    if looped:
        A, C, c, d = _tableau_arrays(tab, y.dtype)

        def stage(i, U):
            yi = y + _matvec(U.T, A[i])
            fi = f(jnp.minimum(t + c[i] * h, t_cap), yi, p, *consts)
            return U.at[i].set(linear.solve(Winv, fi + _matvec(U.T, C[i]) / h + d[i] * h * ft))

        U0 = jnp.zeros((s, n), y.dtype).at[0].set(linear.solve(Winv, f0 + tab.d[0] * h * ft))
        U = jax.lax.fori_loop(1, s, stage, U0)
        y_new = y + _matvec(U.T, A[s - 1]) + U[s - 1]
    else:
        us = []
        for i in range(s):
            if i == 0:
                fi = f0
            else:
                yi = y
                for j in range(i):
                    if tab.A[i][j] != 0.0:
                        yi = yi + tab.A[i][j] * us[j]
                fi = f(jnp.minimum(t + tab.c[i] * h, t_cap), yi, p, *consts)
            rhs = fi
            for j in range(i):
                if tab.C[i][j] != 0.0:
                    rhs = rhs + (tab.C[i][j] / h) * us[j]
            if tab.d[i] != 0.0:
                rhs = rhs + (tab.d[i] * h) * ft
            us.append(linear.solve(Winv, rhs))
        y_new = y
        for j in range(s - 1):  # stiffly accurate: y_new = y + sum_j a_sj u_j + u_s
            if tab.A[s - 1][j] != 0.0:
                y_new = y_new + tab.A[s - 1][j] * us[j]
        y_new = y_new + us[s - 1]
        U = jnp.stack(us)
    # a rejected factorisation (sparse: growth or a zero pivot) rejects the step
    y_new = jnp.where(ok, y_new, jnp.nan)
    return y_new, U[s - 1], f0, (U, Winv, J, ft)


@partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2, 3))
def _step(tab, f, linear, looped, t, y, p, h, t_cap, *consts):
    return _stages(tab, f, linear, t, y, p, h, t_cap, consts, looped)[:3]


@_step.defjvp
def _step_jvp(tab, f, linear, looped, primals, tangents):
    """Forward derivative of the discrete step, reusing its factorised ``W``.

    Differentiating ``W u_i = r_i`` gives ``W du_i = dr_i - dW u_i`` with the same ``W^-1``,
    so each tangent costs one matrix-vector product and two directional derivatives of
    ``f`` per stage, not a differentiated Jacobian and elimination (the staggered direct
    idea of Caracotsios & Stewart (1985), Comput. Chem. Eng. 9:359, applied to the
    Rosenbrock stages). ``dW u_i`` and ``d(h d_i f_t)`` are second derivatives of ``f``
    along ``(u_i, h d_i)``, taken for all stages at once."""
    t, y, p, h, t_cap, *consts = primals
    dt, dy, dp, dh, dtc, *dconsts = tangents
    y_new, err, f0, (U, Winv, J, ft) = _stages(tab, f, linear, t, y, p, h, t_cap, consts,
                                               looped)
    base, dbase = (t, y, p, *consts), (dt, dy, dp, *dconsts)
    A, C, c, d = _tableau_arrays(tab, y.dtype)

    def along(u, tau):
        def directional(t, y, p, *c):
            return jax.jvp(lambda tt, yy: f(tt, yy, p, *c), (t, y), (tau, u))[1]
        return jax.jvp(directional, base, dbase)[1]

    second = jax.vmap(along)(U, d * h)

    if looped:
        def stage(i, carry):  # stage 0: A[0] = 0 and c[0] = 0 make it the base point
            dU, df0 = carry
            yi, dyi = y + _matvec(U.T, A[i]), dy + dU.T @ A[i]
            ti = jnp.minimum(t + c[i] * h, t_cap)
            dti = jnp.where(t + c[i] * h <= t_cap, dt + c[i] * dh, dtc)
            dfi = jax.jvp(f, (ti, yi, p, *consts), (dti, dyi, dp, *dconsts))[1]
            drhs = (dfi + second[i] + (dh / (h * h * tab.gamma)) * U[i] + dU.T @ C[i] / h
                    - (dh / (h * h)) * _matvec(U.T, C[i]) + (d[i] * dh) * ft)
            return dU.at[i].set(linear.solve(Winv, drhs)), jnp.where(i == 0, dfi, df0)

        zero = jnp.zeros(U.shape, jnp.result_type(U, dy))
        dU, df0 = jax.lax.fori_loop(0, tab.stages, stage, (zero, zero[0]))
        s = tab.stages - 1
        return (y_new, err, f0), (dy + dU.T @ A[s] + dU[s], dU[s], df0)
    # unrolled: f's derivatives at all stage points at once (its Jacobian in (t, y), one
    # vmapped copy, and its derivative along the tangents of p), so that the recursion over
    # the stages is matrix algebra with no copy of f per stage; only the nonzero
    # coefficients of the tableau enter
    s = tab.stages
    T = jnp.minimum(t + c * h, t_cap)
    Y = y[None, :] + jnp.asarray(tab.A, y.dtype) @ U

    def jac_ty(ti, yi):
        return linear.jacobian(lambda z: f(z[-1], z[:-1], p, *consts),
                               jnp.concatenate([yi, jnp.reshape(ti, (1,))]))[:2]

    J_rest, ft_rest = jax.vmap(jac_ty)(T[1:], Y[1:])
    fts = jnp.concatenate([ft[None], ft_rest])
    Js = jnp.concatenate([J[None], J_rest])
    dfp = jax.vmap(lambda ti, yi: jax.jvp(lambda pp, *cc: f(ti, yi, pp, *cc),
                                          (p, *consts), (dp, *dconsts))[1])(T, Y)
    dus = []
    for i in range(s):
        dyi = dy
        for j in range(i):
            if tab.A[i][j] != 0.0:
                dyi = dyi + tab.A[i][j] * dus[j]
        dti = jnp.where(t + tab.c[i] * h <= t_cap, dt + tab.c[i] * dh, dtc)
        dfi = linear.matvec(Js[i], dyi) + fts[i] * dti + dfp[i]
        df0 = dfi if i == 0 else df0
        drhs = dfi + second[i] + (dh / (h * h * tab.gamma)) * U[i]
        for j in range(i):
            if tab.C[i][j] != 0.0:
                drhs = drhs + (tab.C[i][j] / h) * dus[j] - (tab.C[i][j] * dh / (h * h)) * U[j]
        if tab.d[i] != 0.0:
            drhs = drhs + (tab.d[i] * dh) * ft
        dus.append(linear.solve(Winv, drhs))
    s = tab.stages - 1
    dy_new = dy
    for j in range(s):
        if tab.A[s][j] != 0.0:
            dy_new = dy_new + tab.A[s][j] * dus[j]
    return (y_new, err, f0), (dy_new + dus[s], dus[s], df0)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _step_reverse(tab, f, linear, looped, t, y, p, h, t_cap, *consts):
    return _stages(tab, f, linear, t, y, p, h, t_cap, consts, looped)[:3]


def _step_reverse_fwd(tab, f, linear, looped, t, y, p, h, t_cap, *consts):
    y_new, err, f0, (U, Winv, _, ft) = _stages(tab, f, linear, t, y, p, h, t_cap, consts,
                                               looped)
    return (y_new, err, f0), (t, y, p, h, t_cap, consts, U, Winv, ft)


def _step_reverse_bwd(tab, f, linear, looped, res, cts):
    """Reverse derivative of the discrete step (its adjoint), reusing its factorised ``W``.

    With ``lambda_i = W^-T bar(u)_i`` taken from the last stage to the first, each stage
    passes ``lambda_i`` back through ``f`` at its point (one vector-Jacobian product) and
    through its ``C`` and ``A`` couplings to the earlier stages; ``W`` and ``h d_i f_t``,
    both derivatives of ``f`` at the step's start, give one second-order term for all
    stages, ``grad_(t,y,p) sum_i lambda_i^T (J u_i + h d_i f_t)``. The transpose of
    :func:`_step_jvp`; one copy of ``f``'s vector-Jacobian product in a loop over the
    stages."""
    t, y, p, h, t_cap, consts, U, Winv, ft = res
    ybar_new, ebar, f0bar = cts
    s, gamma = tab.stages, tab.gamma
    A, C, c, d = _tableau_arrays(tab, y.dtype)
    inexact = [jnp.issubdtype(jnp.result_type(v), jnp.inexact) for v in consts]

    def f_diff(ti, yi, pi, *cd):  # f of the differentiable constants only
        it = iter(cd)
        return f(ti, yi, pi, *(next(it) if k else v for v, k in zip(consts, inexact,
                                                                      strict=True)))

    cd0 = [v for v, k in zip(consts, inexact, strict=True) if k]
    Ubar = A[s - 1][:, None] * ybar_new[None, :]
    Ubar = Ubar.at[s - 1].add(ybar_new + ebar)
    zeros = jax.tree.map(jnp.zeros_like, (p, cd0))

    def stage(k, carry):
        Ubar, Lam, ybar, tbar, hbar, tcbar, pbar = carry
        i = s - 1 - k
        lam = linear.solve_transpose(Winv, Ubar[i])
        Lam = Lam.at[i].set(lam)
        Ubar = Ubar + (C[i][:, None] / h) * lam[None, :]
        hbar = hbar - jnp.dot(C[i], U @ lam) / (h * h) + d[i] * jnp.dot(lam, ft) \
            + jnp.dot(lam, U[i]) / (h * h * gamma)
        first = i == 0  # stage 0 is f(t, y): its time is not capped
        free = first | (t + c[i] * h <= t_cap)
        ti = jnp.where(first, t, jnp.minimum(t + c[i] * h, t_cap))
        yi = y + _matvec(U.T, A[i])
        _, pull = jax.vjp(f_diff, ti, yi, p, *cd0)
        tb, yb, pb, *cb = pull(lam + jnp.where(first, f0bar, 0.0))
        ybar = ybar + yb
        Ubar = Ubar + A[i][:, None] * yb[None, :]
        tbar = tbar + jnp.where(free, tb, 0.0)
        hbar = hbar + jnp.where(free, c[i] * tb, 0.0)
        tcbar = tcbar + jnp.where(free, 0.0, tb)
        pbar = jax.tree.map(jnp.add, pbar, (pb, cb))
        return Ubar, Lam, ybar, tbar, hbar, tcbar, pbar

    z = jnp.zeros((), y.dtype)
    carry = (Ubar, jnp.zeros_like(U), ybar_new, z, z, z, zeros)
    _, Lam, ybar, tbar, hbar, tcbar, (pbar, cbar) = jax.lax.fori_loop(0, s, stage, carry)

    def second(t, y, p, *cd):  # sum_i lambda_i^T (J u_i + h d_i f_t) at the step's start
        def along(u, tau):
            return jax.jvp(lambda tt, yy: f_diff(tt, yy, p, *cd), (t, y), (tau, u))[1]
        return jnp.sum(Lam * jax.vmap(along)(U, d * h))

    g = jax.grad(second, argnums=tuple(range(3 + len(cd0))))(t, y, p, *cd0)
    cbar = iter([a + b for a, b in zip(cbar, g[3:], strict=True)])
    cts_consts = [next(cbar) if k else np.zeros(jnp.shape(v), jax.dtypes.float0)
                  for v, k in zip(consts, inexact, strict=True)]
    return (tbar + g[0], ybar + g[1], jax.tree.map(jnp.add, pbar, g[2]), hbar, tcbar,
            *cts_consts)


_step_reverse.defvjp(_step_reverse_fwd, _step_reverse_bwd)


# right-hand sides with more operations than this step in a loop over the stages: the
# unrolled stages hold s copies of f (s = 8 for Rodas5) in the compiled program, the loop
# one. Bachmann et al. 2011 (280 operations) compiles its PEtab gradient in 27 s looped and
# 33 s unrolled, for 3.9 s per gradient against 3.2 s (decision 0016)
LOOP_STAGES_ABOVE = 250


def _size(f, *args) -> int:
    """Operations in ``f``'s program (sub-programs counted in full)."""
    def count(jaxpr):
        return sum(1 + sum(count(sub.jaxpr if hasattr(sub, "jaxpr") else sub)
                           for sub in jax.extend.core.jaxprs_in_params(e.params))
                   for e in jaxpr.eqns)
    return count(jax.make_jaxpr(f)(*args).jaxpr)


def rosenbrock_step(tab: Tableau, f, t, y, p, h, t_cap=None, linear=None,
                    reverse: bool = False):
    """One step of size ``h`` from ``(t, y)``: returns ``(y_new, error_estimate, f(t, y))``.

    ``linear``: the Jacobian and the linear solves (``None``: :class:`Dense`; a
    :class:`~scalebridge.solvers.sparse.SparseJacobian` for a large sparse model).

    ``t_cap``: stage times are clipped to it (a step ending at an input jump is evaluated
    just before the jump). Derivatives reuse the step's ``W^-1``: forward ones
    (:func:`_step_jvp`), or with ``reverse`` reverse ones (:func:`_step_reverse_bwd`; the
    step then has no forward derivative); values are those of differentiating the
    discrete step."""
    y = jnp.asarray(y)
    t = jnp.asarray(t, y.dtype)
    h = jnp.asarray(h, y.dtype)
    t_cap = jnp.asarray(jnp.inf if t_cap is None else t_cap, y.dtype)
    fc, consts = jax.closure_convert(f, t, y, p)
    looped = _size(fc, t, y, p, *consts) > LOOP_STAGES_ABOVE
    step = _step_reverse if reverse else _step
    return step(tab, fc, DENSE if linear is None else linear, looped, t, y, p, h, t_cap,
                *consts)


def _reference_step(tab: Tableau, f, t, y, p, h, t_cap=None, looped=False, linear=None):
    """The same step differentiated by plain automatic differentiation (tests compare)."""
    t_cap = jnp.inf if t_cap is None else t_cap
    return _stages(tab, lambda t, y, p: f(t, y, p), DENSE if linear is None else linear,
                   t, y, p, h, t_cap, (), looped)[:3]


def check_tableau(tab: Tableau) -> None:
    if len(tab.A) != tab.stages or len(tab.C) != tab.stages or len(tab.d) != tab.stages:
        raise InputError(f"tableau {tab.name}: A, C, c and d must have one row per stage")
