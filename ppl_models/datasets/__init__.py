"""Data loaders returning ppl_models.data.ModelData, and the bundled data files."""
