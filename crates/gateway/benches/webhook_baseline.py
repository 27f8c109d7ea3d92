"""The baseline for `cargo xtask bench webhooks`: what the original design's Odoo controller
does with a webhook, as a minimal werkzeug application — check the HMAC with
hmac.compare_digest, parse the JSON, insert the event into SQLite, commit.

Usage: python3 webhook_baseline.py PORT DB_PATH SECRET
"""

import hashlib
import hmac
import json
import sqlite3
import sys
import threading

from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

PORT, DB_PATH, SECRET = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
local = threading.local()


def db():
    if not hasattr(local, "conn"):
        conn = sqlite3.connect(DB_PATH, timeout=10)
        conn.execute("PRAGMA synchronous=NORMAL")
        local.conn = conn
    return local.conn


# WAL is a property of the database file: set once here. Set by each thread's first
# connection, the switch raced the others' and failed with "database is locked" (a 500 on
# the first events, seen in CI).
with sqlite3.connect(DB_PATH) as setup:
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute(
        "CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, event_type TEXT, order_id TEXT, payload TEXT)"
    )


@Request.application
def app(request):
    if request.path != "/klarna/webhook" or request.method != "POST":
        return Response("not found", status=404)
    body = request.get_data()
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("Klarna-Signature", "")):
        return Response("bad signature", status=401)
    try:
        event = json.loads(body)
        meta = event["metadata"]
        conn = db()
        conn.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
            (meta["event_id"], meta["event_type"], event["payload"]["order_id"], body.decode()),
        )
        conn.commit()
    except (ValueError, KeyError, TypeError):
        return Response("bad event", status=400)
    return Response('{"status": "accepted"}', content_type="application/json")


if __name__ == "__main__":
    run_simple("127.0.0.1", PORT, app, threaded=True)
