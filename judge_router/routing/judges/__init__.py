"""Judges rate a conversation low, medium or high: the LLM judge, the heuristic, and their chain."""
