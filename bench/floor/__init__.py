"""Bench-only app (loaded by bench/settings.py, never by the product's settings): the scratch model of the
DRF-create floor (bench 1), and django-viewflow's flow of one human task (benches 1 and 2)."""
