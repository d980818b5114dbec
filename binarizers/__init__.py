"""The built-in binarizers, one module each, written only against bnnbench's public plugin API.

Installed as `bnnbench.binarizers` (this folder is mapped in pyproject.toml, as tasks/ is to
bnnbench.tasks); every module here is imported when the binarizers are first looked up
(`bnnbench.api.registry`).
"""
