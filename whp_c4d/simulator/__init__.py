"""A Twilio-compatible fake of the Messages API, for demos, training, tests and benchmarks (a leaf)."""
