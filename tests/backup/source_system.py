"""A source system that keeps creating escalations through the API until told to stop.

Run as `python -m tests.backup.source_system LOG STOP` in a process of its own, against the database its
environment names. It seeds the demo tenant, then appends the id of each escalation to LOG once the
API answered 201 (so after its transaction committed), until the file STOP exists.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import django


def main(log: Path, stop: Path) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustguard.settings_test")
    django.setup()
    from django.test import Client

    from escalations.demo import seed_demo

    vendor = seed_demo("demo")["api_keys"]["vendor"]
    client = Client(SERVER_NAME="localhost")
    n = 0
    with log.open("a") as out:
        while not stop.exists():
            body = {"type": "SANCTIONS_MATCH", "reason": f"Screening hit {n}", "requested_by": "kyc@bank.example",
                    "source": {"system": "screening", "entity_type": "customer", "entity_id": f"C-{n}"}}
            response = client.post("/api/v1/escalations", data=json.dumps(body), content_type="application/json",
                                   headers={"Authorization": f"Bearer {vendor}", "Idempotency-Key": f"hit-{n}"})
            if response.status_code != 201:
                print(f"POST /escalations: {response.status_code} {response.content[:500]!r}", file=sys.stderr)
                return 1
            out.write(response.json()["id"] + "\n")
            out.flush()
            n += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
