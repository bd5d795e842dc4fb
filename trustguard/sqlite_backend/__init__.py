"""Django's SQLite backend, with `flush` emptying tables the way PostgreSQL's TRUNCATE does (see base.py)."""
