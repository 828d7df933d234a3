"""The one global switch: JAX in float64.

Mechanistic work (stiff ODEs, likelihoods) fails in float32, and JAX decides the default
precision once per process. scalebridge therefore enables ``jax_enable_x64`` here, when the
package is first imported, and nowhere else. Networks that want float32 parameters create
them with an explicit ``dtype``. See docs/decisions/0001-float64.md.
"""

import jax

jax.config.update("jax_enable_x64", True)
