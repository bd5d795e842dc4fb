"""gunicorn settings for production (`gunicorn trustguard.wsgi`) and for the HTTP benchmarks.

Every value can be overridden by the environment (WEB_CONCURRENCY, GUNICORN_THREADS, PORT, ...) or
on the command line. Threads matter: a gthread worker keeps client connections alive and a slow
client never pins a whole process; the ORM keeps one database connection per thread.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 5
timeout = 60
graceful_timeout = 30
# Recycle workers now and then (a slow leak in any dependency cannot grow without bound).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = max_requests // 10
# The request log (trustguard.request_log) already writes one JSON line per request.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
