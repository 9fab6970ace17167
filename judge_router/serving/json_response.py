"""JSONResponse rendered by pydantic-core's serializer (Rust) instead of the json module.

Every answer goes through it; on the proxy path that is ~10 µs of the ~13 µs Starlette spends. One
difference from Starlette's: NaN and infinities become null instead of raising.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return self.render_json(content)

    @staticmethod
    def render_json(content: Any) -> bytes:
        """JSON bytes for any JSON-like value; never fails on NaN, infinities or lone surrogates."""
        try:
            return pydantic_core.to_json(content, inf_nan_mode="null")
        except pydantic_core.PydanticSerializationError:
            # A lone surrogate ("\ud800": valid in JSON text, not in UTF-8) echoed back from a
            # request: escaped, as the json module writes it, rather than a failed answer.
            return json.dumps(content, separators=(",", ":"), allow_nan=False).encode("ascii")
