"""The ZeroMQ wire: its format (wire.py), the publishing socket (publisher.py) and the
consumer's side (subscriber.py)."""
