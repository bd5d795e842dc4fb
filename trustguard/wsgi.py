import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustguard.settings")
application = get_wsgi_application()

# gunicorn runs no system checks: a web process whose database no longer guards the audit trail stops here.
from trustguard.checks import refuse_to_start_unprotected  # noqa: E402

refuse_to_start_unprotected()
