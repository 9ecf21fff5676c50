"""File jobs: several inputs into a folder, and long files in segments (resumable, on local
worker processes or a Ray cluster)."""
