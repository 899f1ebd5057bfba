"""Support code shared by the tests and the benchmarks: the random-weight test models
(``tiny_model``, also ``python -m testkit.tiny_model --serve`` for the offline demo), the one reader
of the shared data (``shared_data``), real server and redis-server subprocesses on loopback ports
(``server_helpers``, ``redis_helpers``) and real documents built from the shared data
(``document_fixtures``). It lives outside ``tests/`` so that benchmarks need not import the test
suite, and outside ``mt/``: the service never imports it and the wheel does not ship it.
"""
