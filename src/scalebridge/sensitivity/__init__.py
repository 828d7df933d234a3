"""Sensitivity analysis: global (Sobol' indices, Morris screening) and local (autodiff).

- :func:`sobol`: first-order, total and second-order Sobol' indices on a scrambled Sobol'
  Saltelli design, with bootstrap confidence intervals (Saltelli et al. 2010; Jansen 1999).
- :func:`morris`: elementary effects mu, mu*, sigma (Morris 1991; Campolongo et al. 2007).
- :func:`local`: normalised derivatives ``d log y / d log p`` by ``jax.jacfwd``.
- :class:`ModelOutput`: a model's scalar output (``"max:G"``, ``"G@120"``, ...) as a
  vectorised function of its parameters, for any of the above.
- Input distributions: ``(low, high)`` pairs (uniform), :class:`Uniform`,
  :class:`LogUniform`, :class:`Normal`, :class:`TruncNormal`.
"""

from .distributions import LogUniform, Normal, TruncNormal, Uniform
from .local import LocalResult, local
from .morris import MorrisResult, morris
from .outputs import ModelOutput, OutputSpec, parse_output
from .sobol import SobolResult, sobol

__all__ = ["sobol", "SobolResult", "morris", "MorrisResult", "local", "LocalResult",
           "ModelOutput", "OutputSpec", "parse_output", "Uniform", "LogUniform", "Normal",
           "TruncNormal"]
