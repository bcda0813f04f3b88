"""``python -m etcdfast``: the etcdfast command line (see ``etcdfast --help``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
