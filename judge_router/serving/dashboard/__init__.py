"""The savings dashboard: a page served by the service itself, drawn from JSON endpoints over the
ledger (routes.py); its static files are in static/."""
