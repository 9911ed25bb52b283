"""The base of every params.yaml section: a pydantic model that forbids unknown keys, is strict
about types and cannot be changed once read. core/config.py builds the framework's sections on it;
a task's own section (`Task.params_model`, e.g. the recommender's `recommend`) too, in its package.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Share = Annotated[float, Field(ge=0.0, le=1.0)]
