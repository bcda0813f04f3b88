"""The sync client: :class:`Client`, its grpcio executor and its watch/lease/bulk drivers."""

from .client import Client
from .lease import Lease
from .watch import Watch

__all__ = ["Client", "Lease", "Watch"]
