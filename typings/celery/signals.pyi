# Celery's signals as the product connects to them (see __init__.pyi); a connected receiver keeps its own type.
from collections.abc import Callable
from typing import Any, TypeVar, overload

_F = TypeVar("_F", bound=Callable[..., Any])

class Signal:
    @overload
    def connect(self, receiver: _F, /, *, sender: Any = ..., weak: bool = ..., dispatch_uid: Any = ...) -> _F: ...
    @overload
    def connect(self, *, sender: Any = ..., weak: bool = ..., dispatch_uid: Any = ...) -> Callable[[_F], _F]: ...
    def __getattr__(self, name: str) -> Any: ...

before_task_publish: Signal
task_prerun: Signal
task_postrun: Signal
worker_init: Signal
beat_init: Signal

def __getattr__(name: str) -> Any: ...
