"""Simulation results: trajectories of states and observables, labelled by name."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

from .errors import InputError


class Solution(eqx.Module):
    """One simulated trajectory.

    ``states`` has shape ``(n_times, n_states)``, ``observables`` ``(n_times, n_obs)``.
    Index by name: ``sol["S"]`` gives the series of a state or observable.
    """

    times: jax.Array
    states: jax.Array
    observables: jax.Array
    state_names: tuple[str, ...] = eqx.field(static=True)
    observable_names: tuple[str, ...] = eqx.field(static=True)

    @property
    def names(self) -> tuple[str, ...]:
        return self.state_names + self.observable_names

    def __getitem__(self, name: str):
        if name in self.state_names:
            return self.states[:, self.state_names.index(name)]
        if name in self.observable_names:
            return self.observables[:, self.observable_names.index(name)]
        raise InputError(f"no state or observable named {name!r}; have {', '.join(self.names)}")

    def to_pandas(self):
        """A DataFrame indexed by time, one column per state and observable."""
        import pandas as pd

        data = np.concatenate([np.asarray(self.states), np.asarray(self.observables)], axis=1)
        index = pd.Index(np.asarray(self.times), name="time")
        return pd.DataFrame(data, index=index, columns=list(self.names))

    def to_xarray(self):
        """An ``xarray.Dataset`` with one variable per state and observable over ``time``."""
        import xarray as xr

        t = np.asarray(self.times)
        return xr.Dataset({n: ("time", np.asarray(self[n])) for n in self.names},
                          coords={"time": t})


class EnsembleSolution(eqx.Module):
    """Trajectories of many parameter sets: ``states`` is ``(n_members, n_times, n_states)``;
    ``success[i]`` says whether member ``i`` solved (failed members hold NaN)."""

    times: jax.Array
    params: jax.Array
    states: jax.Array
    observables: jax.Array
    success: jax.Array
    state_names: tuple[str, ...] = eqx.field(static=True)
    observable_names: tuple[str, ...] = eqx.field(static=True)
    parameter_names: tuple[str, ...] = eqx.field(static=True)

    def __len__(self):
        return int(self.states.shape[0])

    def member(self, i: int) -> Solution:
        """Member ``i`` as a :class:`Solution`."""
        return Solution(self.times, self.states[i], self.observables[i],
                        self.state_names, self.observable_names)

    def to_xarray(self):
        """An ``xarray.Dataset`` over ``(member, time)`` with the parameters and success flag."""
        import xarray as xr

        names = self.state_names + self.observable_names
        data = np.concatenate([np.asarray(self.states), np.asarray(self.observables)], axis=2)
        ds = xr.Dataset(
            {n: (("member", "time"), data[:, :, k]) for k, n in enumerate(names)},
            coords={"member": np.arange(len(self)), "time": np.asarray(self.times)},
        )
        for k, n in enumerate(self.parameter_names):
            ds[f"param_{n}"] = ("member", np.asarray(self.params)[:, k])
        ds["success"] = ("member", np.asarray(self.success))
        return ds
