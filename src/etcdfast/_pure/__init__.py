"""Pure-Python twin of ``etcdfast._fast``: the reference behaviour, always importable."""
