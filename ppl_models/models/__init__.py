"""NumPyro programs, marginalized distributions and estimators of the model families."""
