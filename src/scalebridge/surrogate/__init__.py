"""Gaussian-process and multi-fidelity surrogates, acquisition functions and the
design-space exploration loop (Bayesian optimisation, active learning).

- :class:`GaussianProcess`: exact GP regression with ARD kernels (:class:`RBF`,
  :class:`Matern32`, :class:`Matern52`, sums and products), type-II maximum likelihood.
- :class:`LinearMultiFidelityGP` (Kennedy & O'Hagan 2000, recursive form of Le Gratiet &
  Garnier 2014) and :class:`NonlinearMultiFidelityGP` (NARGP, Perdikaris et al. 2017).
- :func:`explore`: Bayesian optimisation (expected improvement, confidence bounds) and
  active learning (maximum variance), batches, several fidelities with costs; resumable.
- :mod:`~scalebridge.surrogate.acquisition`: the acquisition functions themselves.
"""

from .explore import ExploreResult, explore
from .gp import GaussianProcess
from .kernels import RBF, Matern32, Matern52
from .multifidelity import LinearMultiFidelityGP, NonlinearMultiFidelityGP

__all__ = ["GaussianProcess", "RBF", "Matern32", "Matern52", "LinearMultiFidelityGP",
           "NonlinearMultiFidelityGP", "explore", "ExploreResult"]
