"""Request builders: every option of every call, validated and encoded once.

Each module mirrors one etcd service (``kv``, ``txn``, ``lease``, ``watch``,
``cluster``, ``maintenance``, ``auth``) or a family of calls (``bulk``). A
builder returns what a client executes -- a :class:`~etcdfast.api.request.Request`,
a plan of several, or validated options -- and does no IO; ``Client`` and
``AsyncClient`` expose the builders as methods with the same signatures.
"""
