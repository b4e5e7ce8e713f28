"""The bundled catalog cards (TOML). Installed as the package data ``ppl_models.models_catalog``."""
