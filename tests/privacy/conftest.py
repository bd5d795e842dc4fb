from tests.api.conftest import api, other  # noqa: F401  (the API client fixtures)
