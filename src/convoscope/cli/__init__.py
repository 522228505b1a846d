"""The ``convoscope`` command line: a composition root over the server, the stores and HTTP."""
