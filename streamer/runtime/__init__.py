"""The runtime: sessions (a source, its outputs, its temporal state) batched by one engine
worker (batcher.py, session.py, server.py); ``run`` is a server with one session
(pipeline.py)."""
