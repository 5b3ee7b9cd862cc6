"""Core: base models, time and locale helpers, permissions, signals, errors."""
