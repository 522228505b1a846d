"""The ``slug`` URL convertor: an id segment that never holds a ``:``.

Custom methods are addressed as ``/things/{id}:verb`` (``/alerts/rules/x:evaluate``,
``/schedules/x:run``). With Starlette's default ``str`` convertor ``{id}`` would also match ``x:verb``,
so another method on that URL reached the ``/{id}`` route and answered 422 for a bad id instead of 405
naming POST. An id that stops before ``:`` leaves the whole URL to the custom method's route. Routes
write ``{name:slug}``; importing this module registers the convertor.
"""

from __future__ import annotations

from starlette.convertors import StringConvertor, register_url_convertor

__all__ = ["SLUG_CONVERTOR"]

SLUG_CONVERTOR = "slug"
"""The convertor's name in a route path: ``/rules/{rule_id:slug}``."""


class _SlugConvertor(StringConvertor):
    """Letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit: never a ``:``."""

    regex = "[A-Za-z0-9][A-Za-z0-9._-]*"


register_url_convertor(SLUG_CONVERTOR, _SlugConvertor())
