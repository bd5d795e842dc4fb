"""The product's URLs plus the baselines the HTTP benchmarks compare against, on the same server,
settings and middleware: a bare Django JSON view (bench 1) and a bare template view (bench 6)."""

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from trustguard.urls import urlpatterns as product_urlpatterns


@csrf_exempt
def bare_json(request: HttpRequest) -> HttpResponse:
    """Parse a JSON body and answer JSON: what any JSON endpoint costs before it does any work."""
    body = json.loads(request.body or b"{}")
    return JsonResponse({"ok": True, "received": len(body)}, status=201 if request.method == "POST" else 200)


def bare_template(request: HttpRequest) -> HttpResponse:
    """Render a page of 25 rows from a template, without the database: a template view's floor."""
    rows = [{"id": i, "title": f"Order ORD-{i}", "amount": f"NGN {i * 1000:,}"} for i in range(25)]
    return render(request, "bench/bare.html", {"rows": rows})


urlpatterns = [
    path("bench/bare-json", bare_json),
    path("bench/bare-template", bare_template),
    *product_urlpatterns,
]
