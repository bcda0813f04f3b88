"""asyncio flavour of etcdfast: the same API with ``async def`` methods."""

from .client import AsyncClient

__all__ = ["AsyncClient"]
