"""The live room: WebSocket watchers of lots (issue 14), served by the ASGI process.

``consumer.py`` speaks the contract's protocol on one socket; ``hub.py`` is the
per-process fan-out (one subscription per watched lot, bursts coalesced);
``sources.py`` carries publishers' announcements in (Redis pub/sub, or the
embedded default's change log); ``reads.py`` are the database reads, through
the API's own selectors and presenters.
"""
