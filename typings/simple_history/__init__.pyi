# django-simple-history ships no type hints; admin.pyi types the admin class our history admins extend.
from typing import Any

def __getattr__(name: str) -> Any: ...
