"""The loopback fake provider shared by tests and benchmarks."""
