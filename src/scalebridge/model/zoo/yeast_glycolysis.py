"""Glycolytic oscillator of yeast (seven species).

Ruoff P, Christensen MK, Wolf J, Heinrich R (2003) Temperature dependency and temperature
compensation in a model of yeast glycolytic oscillations. Biophys Chem 106:179-192.
Parameters and initial state as used by Yazdani A, Lu L, Raissi M, Karniadakis GE (2020)
Systems biology informed deep learning for inferring parameters and hidden dynamics.
PLoS Comput Biol 16:e1007575.

Species (mM): S1 glucose, S2 glyceraldehyde-3-phosphate + dihydroxyacetone phosphate,
S3 1,3-bisphosphoglycerate, S4 intracellular pyruvate/acetaldehyde pool, S5 NADH, S6 ATP,
S7 extracellular pyruvate/acetaldehyde pool. Time in minutes.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..model import Model
from ..parameter import Parameter

CITATION = (
    "Ruoff P, Christensen MK, Wolf J, Heinrich R (2003) Temperature dependency and "
    "temperature compensation in a model of yeast glycolytic oscillations. Biophys Chem "
    "106:179-192; parameters of Yazdani A, Lu L, Raissi M, Karniadakis GE (2020) PLoS "
    "Comput Biol 16:e1007575"
)


def _rhs(t, y, p, u):
    s1, s2, s3, s4, s5, s6, s7 = y
    j0, k1, k2, k3, k4, k5, k6, k, kappa, q, big_k1, psi, n, a = p
    v1 = k1 * s1 * s6 / (1.0 + (s6 / big_k1) ** q)  # hexokinase-PFK, inhibited by ATP
    v2 = k2 * s2 * (n - s5)  # GAPDH, NAD+ = N - NADH
    v3 = k3 * s3 * (a - s6)  # PGK-PK, ADP = A - ATP
    v4 = k4 * s4 * s5  # alcohol dehydrogenase
    v5 = k5 * s6  # ATP consumption
    v6 = k6 * s2 * s5  # glycerol production
    v7 = k * s7  # loss of extracellular pyruvate/acetaldehyde
    flux = kappa * (s4 - s7)  # membrane transport
    return jnp.stack([
        j0 - v1,
        2.0 * v1 - v2 - v6,
        v2 - v3,
        v3 - v4 - flux,
        v2 - v4 - v6,
        -2.0 * v1 + 2.0 * v3 - v5,
        psi * flux - v7,
    ])


def yeast_glycolysis() -> Model:
    """The Ruoff et al. (2003) oscillator with the values of Yazdani et al. (2020)."""
    params = [  # Yazdani et al. (2020), taken from Ruoff et al. (2003)
        Parameter("J0", 2.5, lower=0.0, unit="mM/min"),
        Parameter("k1", 100.0, lower=0.0, unit="1/(mM min)"),
        Parameter("k2", 6.0, lower=0.0, unit="1/(mM min)"),
        Parameter("k3", 16.0, lower=0.0, unit="1/(mM min)"),
        Parameter("k4", 100.0, lower=0.0, unit="1/(mM min)"),
        Parameter("k5", 1.28, lower=0.0, unit="1/min"),
        Parameter("k6", 12.0, lower=0.0, unit="1/(mM min)"),
        Parameter("k", 1.8, lower=0.0, unit="1/min"),
        Parameter("kappa", 13.0, lower=0.0, unit="1/min"),
        Parameter("q", 4.0, lower=0.0),
        Parameter("K1", 0.52, lower=0.0, unit="mM"),
        Parameter("psi", 0.1, lower=0.0),
        Parameter("N", 1.0, lower=0.0, unit="mM"),
        Parameter("A", 4.0, lower=0.0, unit="mM"),
    ]
    # Yazdani et al. (2020) (the initial state of their data set): near the limit cycle
    initial = [0.50144272, 1.95478666, 0.19788759, 0.14769148, 0.16059078, 0.16127341,
               0.06404702]
    return Model(
        name="yeast_glycolysis",
        states=["S1", "S2", "S3", "S4", "S5", "S6", "S7"],
        parameters=params,
        rhs=_rhs,
        initial=initial,
        stiff=False,
        citation=CITATION,
        source=("zoo", "yeast_glycolysis"),
    )
