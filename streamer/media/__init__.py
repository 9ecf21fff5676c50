"""The media adapters: PyAV frames to and from :class:`~streamer.frames.Frame` (convert.py),
HDR metadata and the tone map to SDR (hdr.py), photo files with their orientation and metadata
(photo.py), and image sequences' names (sequence.py)."""
