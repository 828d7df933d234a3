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

    def to_dict(self) -> dict:
        """The arrays and names (what :func:`scalebridge.save` stores)."""
        return {"times": np.asarray(self.times), "states": np.asarray(self.states),
                "observables": np.asarray(self.observables),
                "state_names": list(self.state_names),
                "observable_names": list(self.observable_names)}

    @classmethod
    def from_dict(cls, d) -> Solution:
        return cls(np.asarray(d["times"], float), np.asarray(d["states"], float),
                   np.asarray(d["observables"], float), tuple(d["state_names"]),
                   tuple(d["observable_names"]))

    def plot(self, ax=None, *, names=None):
        """The series ``names`` (default: all states and observables, up to 10) against time
        into ``ax`` (a new figure if None); returns the axes."""
        ax = _axes(ax)
        t = np.asarray(self.times)
        for n in list(names or self.names)[:None if names else 10]:
            ax.plot(t, np.asarray(self[n]), lw=1.4, label=n)
        ax.set_xlabel("time")
        ax.legend(fontsize=8)
        return ax


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.5, 3.5))
    return ax


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

    def to_pandas(self):
        """Long format: one row per (member, time), a column per state, observable and
        parameter, and ``success``."""
        return self.to_xarray().to_dataframe()

    def to_dict(self) -> dict:
        """The arrays and names (what :func:`scalebridge.save` stores)."""
        return {"times": np.asarray(self.times), "params": np.asarray(self.params),
                "states": np.asarray(self.states), "observables": np.asarray(self.observables),
                "success": np.asarray(self.success), "state_names": list(self.state_names),
                "observable_names": list(self.observable_names),
                "parameter_names": list(self.parameter_names)}

    @classmethod
    def from_dict(cls, d) -> EnsembleSolution:
        return cls(np.asarray(d["times"], float), np.asarray(d["params"], float),
                   np.asarray(d["states"], float), np.asarray(d["observables"], float),
                   np.asarray(d["success"], bool), tuple(d["state_names"]),
                   tuple(d["observable_names"]), tuple(d["parameter_names"]))

    def plot(self, ax=None, *, name: str | None = None, max_members: int = 200):
        """The series ``name`` (default: the first state) of the first ``max_members``
        members against time, with the median of all solved members, into ``ax`` (a new
        figure if None); returns the axes."""
        ax = _axes(ax)
        name = name or self.state_names[0]
        names = self.state_names + self.observable_names
        if name not in names:
            raise InputError(f"no state or observable named {name!r}; have {', '.join(names)}")
        k = names.index(name)
        data = np.concatenate([np.asarray(self.states), np.asarray(self.observables)], axis=2)
        t, y = np.asarray(self.times), data[:, :, k]
        ax.plot(t, y[:max_members].T, color="C0", lw=0.6, alpha=0.15)
        ok = np.asarray(self.success)
        if ok.any():
            ax.plot(t, np.median(y[ok], axis=0), color="k", lw=1.5, label="median")
            ax.legend(fontsize=8)
        ax.set_xlabel("time")
        ax.set_ylabel(name)
        ax.set_title(f"{len(self)} members ({int(ok.sum())} solved)", fontsize=9)
        return ax
