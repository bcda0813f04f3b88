"""asyncio flavour of etcdfast: the same API with ``async def`` methods, over grpc.aio."""

from .client import AsyncClient
from .lease import AsyncLease
from .watch import AsyncWatch

__all__ = ["AsyncClient", "AsyncLease", "AsyncWatch"]
