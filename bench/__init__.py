"""Benchmarks, each a ``qa bench NAME`` command: ``speed`` (the service against an in-process floor,
and ``--soak``), ``large`` (a 100,000-passage corpus) and ``squad`` (SQuAD dev as one corpus); with
the load generator and the server-process helper they and the tests share."""
