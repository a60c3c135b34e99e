"""One file per family of modules; each registers its cases with ``benchmarks.registry.case``.

The runner imports every module here, so a new family adds its cases by adding a file.
"""
