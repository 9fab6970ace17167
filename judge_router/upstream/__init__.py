"""Every provider call (the only place litellm is imported), circuit breakers and redaction."""
