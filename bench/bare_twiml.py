"""The baseline for bench/inbound.py: a bare Flask app that answers every inbound webhook with empty
TwiML and does nothing else (no signature check, no database). Served by the same gunicorn."""

from flask import Flask, Response

app = Flask(__name__)
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@app.post("/twilio/messages")
def messages():
    return Response(EMPTY, 200, mimetype="text/xml")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
