"""``python -m etcdfast``: the etcdfast command line (see ``etcdfast --help``)."""

from .cli import console_main

if __name__ == "__main__":
    console_main()
