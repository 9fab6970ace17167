"""judge-router: route LLM requests by difficulty, and account for what the routing saved."""

__version__ = "0.1.0"
