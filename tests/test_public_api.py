"""The public surface is exactly ``__all__``, sorted, and every name in it resolves."""

from __future__ import annotations

import convoscope
import convoscope.model


def test_all_is_sorted_and_resolves() -> None:
    for module in (convoscope, convoscope.model):
        names = list(module.__all__)
        assert names == sorted(names, key=lambda n: (n.startswith("_"), n))
        public = {n for n in dir(module) if not n.startswith("_") and n[0].isupper()}
        assert public <= set(names), public - set(names)
        for name in names:
            assert getattr(module, name) is not None
