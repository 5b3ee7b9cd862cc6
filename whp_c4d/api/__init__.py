"""REST API v1: bearer tokens, marshmallow schemas, the same permission map as the UI. A leaf."""
