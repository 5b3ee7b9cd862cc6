"""WSGI entry point for production servers: gunicorn 'wsgi:app'."""

from whp_c4d import create_app

app = create_app()
