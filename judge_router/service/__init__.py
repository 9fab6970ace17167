"""What a request does: the engine, and how a decided request is answered."""
