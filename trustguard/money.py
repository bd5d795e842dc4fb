"""Money shown to people: the one formatter (Babel, the tenant's locale). "₦2,500,000.00", never minor units.

Amounts are stored and sent to machines (the API, webhooks) as integer minor units with an ISO currency;
every message, document and page a person reads formats them here.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import UnknownCurrencyError, format_currency, get_currency_precision
from django.core.exceptions import ValidationError

# The demo tenant's: en_NG prints ₦2,500,000.00 (and "$1,200.00" or "€1,200.00" for other currencies).
DEFAULT_LOCALE = "en_NG"
NO_AMOUNT = "—"


@lru_cache(maxsize=4096)
def format_money(minor: int | None, currency: str, locale: str | None = None) -> str:
    """₦2,500,000.00 from 250000000 "NGN" in `locale` (default en_NG); an em dash when there is no amount.

    Memoised: Babel takes ~10 us, and the queue prints the same amounts on every refresh.
    """
    if minor is None or not currency:
        return NO_AMOUNT
    try:
        digits = get_currency_precision(currency)
        return format_currency(Decimal(minor).scaleb(-digits), currency, locale=locale or DEFAULT_LOCALE)
    except (UnknownCurrencyError, UnknownLocaleError, ValueError):
        # An unknown currency code (or a locale Babel lost): still no minor units on the page.
        return f"{currency} {Decimal(minor).scaleb(-2):,.2f}"


def validate_locale(value: str) -> None:
    """A locale Babel knows (en_NG, en_GB, fr_FR, ...): for the tenant's locale field."""
    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValidationError(f"{value!r} is not a locale (use e.g. en_NG or en_GB)") from None
