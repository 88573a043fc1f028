"""Every schema in the API has a name of its own: django-ninja files schemas under their class name, and a second
class with the same name silently replaces the first in the OpenAPI document (the portal's ``PaymentOut``
overwrote the staff API's in the docs, without an error)."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from abonent.api.urls import api


def _models_in(annotation, found: set):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in found:
            return
        found.add(annotation)
        for field in annotation.model_fields.values():
            _models_in(field.annotation, found)
        return
    for argument in typing.get_args(annotation):
        _models_in(argument, found)


def test_no_two_schema_classes_share_a_name():
    found: set[type] = set()
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for model in operation.models:
                    _models_in(model, found)
                for model in (operation.response_models or {}).values():
                    _models_in(model, found)
    by_name: dict[str, set[str]] = {}
    for model in found:
        if model.__module__.startswith("abonent."):
            by_name.setdefault(model.__name__, set()).add(f"{model.__module__}.{model.__qualname__}")
    clashes = {name: sorted(where) for name, where in by_name.items() if len(where) > 1}
    assert clashes == {}


def test_no_two_operations_share_a_method_and_a_path():
    """Two apps adding the same route: ninja keeps one and the other's handler is silently never reached (the portal's
    sign-in sessions and its connection sessions were both ``GET /my/sessions``)."""
    seen: dict[tuple[str, str], str] = {}
    clashes = []
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for method in operation.methods:
                    key = (method, prefix.rstrip("/") + "/" + path.lstrip("/"))
                    where = f"{operation.view_func.__module__}.{operation.view_func.__name__}"
                    if key in seen:
                        clashes.append((key, seen[key], where))
                    seen[key] = where
    assert clashes == []
