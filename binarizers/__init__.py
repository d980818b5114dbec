"""The built-in binarizers, one module each, written only against bnnbench's public plugin API.

Every module here is imported by `bnnbench.registry.discover()`.
"""
