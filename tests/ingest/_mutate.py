"""Near-valid payloads: a real fixture with one nested value swapped for arbitrary JSON, or one key dropped.

Arbitrary JSON alone rarely gets past an adapter's first check; these reach every field's validation.
"""

from __future__ import annotations

import copy
from typing import Any

from _vendor_json import json_values
from hypothesis import strategies as st

from convoscope.testing.json_paths import json_paths


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one value replaced by arbitrary JSON, or one key removed."""
    result = copy.deepcopy(document)
    path = draw(st.sampled_from(json_paths(result)))
    parent = result
    for part in path[:-1]:
        parent = parent[part]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return result
