"""Test-suite setup: float64 is available (tests of gradients and conservation use it)."""

import jax

jax.config.update("jax_enable_x64", True)
