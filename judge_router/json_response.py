"""JSONResponse rendered by pydantic-core's serializer (Rust) instead of the json module.

Every answer goes through it; on the proxy path that is ~10 µs of the ~13 µs Starlette spends. One
difference from Starlette's: NaN and infinities become null instead of raising.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)
