"""Pure-JAX kernels of the model families (no NumPyro import)."""
