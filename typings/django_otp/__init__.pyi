# django-otp ships no type hints; models.pyi types the abstract models accounts.SealedTOTPDevice builds on.
from typing import Any

def __getattr__(name: str) -> Any: ...
