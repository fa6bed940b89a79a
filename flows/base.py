"""The base of every protocol model: frozen, validated, strict about unknown keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class Frozen(BaseModel):
    """A frozen model that refuses unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy by re-validation.

        Pydantic's copy duplicates the instance dictionary, cached properties included (a
        copied protocol would keep the original's digest); validating anew recomputes them and
        checks the update.
        """
        fields = type(self).model_fields
        data = self.model_dump(by_alias=True)
        for key, value in (update or {}).items():
            data[(fields[key].alias or key) if key in fields else key] = value
        return self.model_validate(data)
