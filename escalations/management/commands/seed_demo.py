import json
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from escalations.demo import seed_demo
from trustguard.vapid import demo_keys_ensure


class Command(BaseCommand):
    help = "Create or refresh (idempotently) a demo tenant with people, credentials, policies and trigger rules."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="demo", help="tenant slug (default: demo)")
        parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["tenant"]
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,49}", slug):
            raise CommandError("--tenant must be a slug: lower-case letters, digits and dashes")
        result = seed_demo(slug)
        # DEBUG without TRUSTGUARD_VAPID_PRIVATE_KEY: a key pair for Web Push in var/ (the settings read it).
        written = demo_keys_ensure()
        if written is not None and not options["json"]:
            self.stdout.write(f"Web Push (VAPID) key: {written}")
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Tenant {result['tenant']}: vendor API key {result['api_keys']['vendor']}")
        for user in result["users"]:
            self.stdout.write(f"  {user['username']:<12} {user['role']:<20} password {user['password']}"
                              f"  TOTP secret {user['totp_secret']}")
