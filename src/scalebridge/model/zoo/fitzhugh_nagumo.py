"""FitzHugh-Nagumo model of an excitable membrane.

FitzHugh R (1961) Impulses and physiological states in theoretical models of nerve
membrane. Biophys J 1:445-466.
Nagumo J, Arimoto S, Yoshizawa S (1962) An active pulse transmission line simulating nerve
axon. Proc IRE 50:2061-2070.

``dv/dt = v - v^3/3 - w + I_ext + I_stim(t)``, ``dw/dt = (v + a - b w) / tau``.
With FitzHugh's a = 0.7, b = 0.8 (1961) and tau = 1/phi = 12.5 (phi = 0.08, FitzHugh's
later choice, 1969; his 1961 c = 3 is tau = c^2 = 9) the rest state loses stability at
I_ext ~ 0.33; the default I_ext = 0.5 gives a relaxation limit cycle. ``I_stim`` is an
optional pulse input (zero by default: add one with ``model.replace(inputs=...)``).
"""

from __future__ import annotations

import jax.numpy as jnp

from ..model import Model
from ..parameter import Parameter

CITATION = (
    "FitzHugh R (1961) Biophys J 1:445-466; "
    "Nagumo J, Arimoto S, Yoshizawa S (1962) Proc IRE 50:2061-2070"
)


def _rhs(t, y, p, u):
    v, w = y
    a, b, tau, i_ext = p
    i_stim = jnp.sum(u)  # 0 without inputs; the sum of the stimulus inputs otherwise
    return jnp.stack([v - v**3 / 3.0 - w + i_ext + i_stim, (v + a - b * w) / tau])


def fitzhugh_nagumo() -> Model:
    """FitzHugh's (1961) parameters with a constant current that makes it oscillate."""
    params = [
        Parameter("a", 0.7),  # FitzHugh (1961)
        Parameter("b", 0.8, lower=0.0),  # FitzHugh (1961)
        Parameter("tau", 12.5, lower=0.0),  # 1/phi, phi = 0.08 (FitzHugh 1969; 1961: tau 9)
        Parameter("I_ext", 0.5),  # constant stimulus current, above the Hopf point ~0.33
    ]
    return Model(
        name="fitzhugh_nagumo",
        states=["v", "w"],
        parameters=params,
        rhs=_rhs,
        # the resting state for I_ext = 0 (root of v - v^3/3 - (v + a)/b = 0), FitzHugh (1961)
        initial=[-1.1994, -0.6243],
        stiff=False,
        citation=CITATION,
        source=("zoo", "fitzhugh_nagumo"),
    )
