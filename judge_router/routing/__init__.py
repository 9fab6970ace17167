"""Choosing a tier: reading the conversation, the verdict cache, the judges, the decision pipeline."""
