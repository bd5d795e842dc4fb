"""gunicorn settings for production (`gunicorn trustguard.wsgi`) and for the HTTP benchmarks.

Every value can be overridden by the environment (BIND or PORT, WEB_CONCURRENCY, GUNICORN_THREADS, ...) or
on the command line. Threads matter: a gthread worker keeps client connections alive and a slow
client never pins a whole process; the ORM keeps one database connection per thread.
"""

import multiprocessing
import os

# BIND (or GUNICORN_BIND) is the whole address, e.g. 0.0.0.0:8000 in a container; otherwise loopback on PORT.
bind = os.environ.get("BIND") or os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
# X-Forwarded-Proto and friends are believed from these addresses only (gunicorn reads FORWARDED_ALLOW_IPS too);
# the compose file sets "*" because only the proxy reaches the web containers there.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# gthread, and only gthread (or another threaded/async class): the live queue's streams (dashboard/live.py) are
# long requests, and a sync worker would be pinned by one of them. Each open stream holds one thread for at most
# TRUSTGUARD_LIVE_STREAM_SECONDS (45 s; then the browser reconnects), and a worker serves at most
# TRUSTGUARD_LIVE_MAX_STREAMS of them at once, by default half its threads: the other half always serves pages and
# the API. More open queues than that: raise GUNICORN_THREADS (streams wait on a socket, they cost no CPU), or the
# extra pages poll every 15 s as before. README "Live queue".
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
os.environ.setdefault("TRUSTGUARD_LIVE_MAX_STREAMS", str(max(1, threads // 2)))
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
