"""Cython twin of ``etcdfast._pure``: same modules, same functions, same results.

Built by setup.py when a C compiler is available; ``etcdfast._codec`` decides
at import time which twin the package uses.
"""
