"""Drop-in replacements for other etcd client libraries, over etcdfast's own client.

``etcdfast.compat.etcd3`` is python-etcd3 (``import etcd3``) 0.12.0's API,
plus what its fork etcd-sdk-python 0.0.7 (``import pyetcd``) added::

    import etcdfast.compat.etcd3 as etcd3

    etcd = etcd3.client(host="127.0.0.1", port=2379)
    etcd.put("/greeting", "hello")
    value, meta = etcd.get("/greeting")
"""
