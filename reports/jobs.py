"""Periodic jobs of the reports app (run by beat through trustguard.run_job, and by run_sweeps)."""

from trustguard.jobs import periodic_job

from .services import export_jobs_kick_queued, export_jobs_purge


@periodic_job("reports.purge_exports", order=900)
def purge_exports() -> str:
    return f"purged {export_jobs_purge()} export jobs"


@periodic_job("reports.kick_queued_exports", order=850)
def kick_queued_exports() -> str:
    return f"kicked {export_jobs_kick_queued()} export jobs waiting for a worker"
