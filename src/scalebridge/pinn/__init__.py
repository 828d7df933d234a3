"""Physics-informed neural networks (Raissi, Perdikaris & Karniadakis 2019, "Physics-informed
neural networks: a deep learning framework for solving forward and inverse problems involving
nonlinear partial differential equations", J. Comput. Phys. 378:686-707), derived from the
same model definitions as the rest of scalebridge.

- :class:`ODEProblem`: the residual ``du/dt - f(t, u, p)`` of a :class:`~scalebridge.Model`,
  with data on states or observables and unknown parameters.
- :class:`PDEProblem`: a PDE in one or two space dimensions, stationary or in time, given
  by a residual function of ``u, u_t, u_x, u_xx, ...`` (forward-mode derivatives), with
  initial, Dirichlet, Neumann and periodic conditions and data on some of the outputs.
- :func:`load_case`, :func:`run_case`: a case in a TOML file (``scalebridge pinn``).
- :func:`train_pinn`: Adam (exponential decay) then L-BFGS (``optax.lbfgs``), with optional
  gradient-norm loss balancing, causal weights, residual-based adaptive refinement and
  resumable checkpoints.
"""

from .case import Case, load_case
from .losses import Dirichlet, Neumann, ODEProblem, PDEProblem, Periodic, causal_mse
from .networks import ACTIVATIONS, Network, Stacked
from .reference import burgers_cole_hopf
from .residuals import (
    derivatives,
    ode_residual,
    pde_residual,
    reaction_diffusion_residual,
    time_derivative,
)
from .run import run_case
from .train import (
    LBFGS,
    RAR,
    Adam,
    Causal,
    Checkpoint,
    GradNormBalance,
    PINNResult,
    train_pinn,
)

__all__ = [
    "ACTIVATIONS", "Adam", "Causal", "Checkpoint", "Dirichlet", "GradNormBalance", "LBFGS",
    "Network", "Neumann", "ODEProblem", "PDEProblem", "PINNResult", "Periodic", "RAR",
    "Stacked", "burgers_cole_hopf", "causal_mse", "derivatives", "ode_residual",
    "pde_residual", "reaction_diffusion_residual", "time_derivative", "train_pinn", "Case",
    "load_case", "run_case",
]
