"""The quality loop: grading answers, checking them, shadow tests and sampling."""
