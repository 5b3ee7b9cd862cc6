"""APScheduler wiring and the worker process (a leaf: nothing imports it but the CLI)."""
