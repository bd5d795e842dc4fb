"""{% optional_include "name.html" %}: include a template when it exists, else nothing.

For places another part of the product fills in when it is installed (e.g. the person's push devices on the
notification settings page); a plain {% include %} of a missing template would fail the page.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.exceptions import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def optional_include(context: Any, name: str) -> SafeString:
    try:
        found = get_template(name)
    except TemplateDoesNotExist:
        return mark_safe("")
    return mark_safe(found.render(context.flatten(), context.get("request")))  # noqa: S308 (a rendered template)
