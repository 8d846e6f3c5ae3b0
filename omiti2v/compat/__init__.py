"""The project's only reaches into diffusers, transformers and torch internals, one module per library.

Each function does one thing no public API of the library offers, says in its docstring what it relies on and
in which versions, and has a direct test (`tests/test_compat.py`) that fails when the library changes it; a test
there also fails when code outside this package reaches into those internals. Upgrading one of the libraries
means reading one file here and running that test file.
"""
