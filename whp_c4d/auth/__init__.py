"""Users, roles, partner organisations, login, server-side sessions, API tokens and the audit log."""
