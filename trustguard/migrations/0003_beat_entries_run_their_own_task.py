"""Beat entries that ran a job through the retired `trustguard.run_job` task now name the job's own task.

Only the task and its arguments change: the entry keeps its name, its schedule and its enabled flag, which
are the operator's (trustguard.periodic).
"""

import json

from django.db import migrations

RETIRED = "trustguard.run_job"


def entries_run_their_own_task(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for entry in PeriodicTask.objects.filter(task=RETIRED):
        try:
            (job,) = json.loads(entry.args or "[]")
        except (TypeError, ValueError):
            continue  # not one of ours: left as it is, for an operator to look at
        PeriodicTask.objects.filter(pk=entry.pk).update(task=job, args="[]")


def entries_run_the_registry_task(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for entry in PeriodicTask.objects.filter(name__contains=".", args="[]").exclude(task=RETIRED):
        if entry.task == entry.name:
            PeriodicTask.objects.filter(pk=entry.pk).update(task=RETIRED, args=json.dumps([entry.name]))


class Migration(migrations.Migration):
    dependencies = [
        ("trustguard", "0002_rate_limit_window"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(entries_run_their_own_task, entries_run_the_registry_task)]
