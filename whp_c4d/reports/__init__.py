"""Read-only queries, rollups and the dashboard. A leaf: nothing imports it."""
