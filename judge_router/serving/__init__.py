"""The HTTP edge: app factory, hot paths, request bodies, access control, answers, Prometheus."""
