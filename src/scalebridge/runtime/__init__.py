"""The machinery every long run shares: run directories with provenance
(:mod:`~scalebridge.runtime.run`), atomic files (:mod:`~scalebridge.runtime.files`),
executors (:mod:`~scalebridge.runtime.executor`) and resumable sweeps
(:mod:`~scalebridge.runtime.sweep`)."""
