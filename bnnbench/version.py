"""The version of bnnbench, recorded in every run folder and export (importable from any layer)."""
__version__ = "0.1.0"
