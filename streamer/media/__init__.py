"""The media adapters: PyAV frames to and from :class:`~streamer.frames.Frame` (convert.py),
and HDR metadata and the tone map to SDR (hdr.py)."""
