"""``serve``: many streams over shared engines (service.py), its configuration (config.py), the
HTTP API with health and the preview pages (http.py, web/), and Prometheus metrics
(metrics.py)."""
