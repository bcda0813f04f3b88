"""The sans-IO core: what a client decides, with no IO.

Call and stream machines (``calls``), the client's state and options
(``state``), endpoints, the watch hub, the keep-alive schedule, bulk loads,
the range pager and the snapshot writer. Nothing here imports grpc,
threading or asyncio (a test checks it): the executors in ``etcdfast._sync``
and ``etcdfast.aio`` perform what these objects decide.
"""
