"""The package version, in a leaf module so that any layer can record it (index manifests)."""

__version__ = "0.1.0"
