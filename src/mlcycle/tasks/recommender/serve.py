"""What the server adds for a recommender: `POST /recommend` and feedback on the listed items.

- `POST /recommend` `{"user": ..., "k": 10, "exclude": [item, ...]}` answers ranked items and scores
  and says which model made the list (`source`: the served model for a known user, `content` or
  `popularity` for a user never seen); each answer is one row of the prediction log. `/predict`
  refuses a recommender with a 409 naming this route.
- Feedback (`POST /feedback`, `mlcycle monitoring feedback --input FILE`): an entry is `{"request_id": ..., "item": ...,
  "rating": ...}`, the item the user clicked or rated in a `/recommend` answer and the rating if any
  (left out: a click). The item must be one of the answer's items (what was not shown is not
  feedback on the list); it is stored as the row of its position in the list (`row` 0 is the first
  item), with `item` and the rating as `label` (null for a click), so an item gets one outcome per
  answer. The command's file has the columns `request_id`, `item` and optionally `rating`.

`mlcycle.serving` reaches this module through the task registry (`Task.serving_module`).
"""

# no `from __future__ import annotations`: FastAPI reads the endpoint's signature (see serving/app.py)

import datetime as dt
import json
import math
import uuid
from typing import Annotated

import pandas as pd

from mlcycle.core.errors import ClientError, LogFull
from mlcycle.serving.app import json_response
from mlcycle.serving.feedback import (
    KnownRequests,
    answer_of,
    cell_value,
    claim,
    entry_request_id,
    file_columns,
)
from mlcycle.serving.predlog import Batch
from mlcycle.tasks.recommender import TASK

ROUTE = "/recommend"
SUMMARY = "ranked items for one user"
NOT_PREDICT = "a recommender"
PREDICT_HINT = 'this model ranks items for a user: POST /recommend {"user": ..., "k": 10, "exclude": [...]}'


FEEDBACK_ENTRY = {  # the JSON schema of one feedback entry (the /feedback body in the OpenAPI document)
    "type": "object", "additionalProperties": False, "required": ["request_id", "item"],
    "properties": {"request_id": {"type": "string", "minLength": 1},
                   "item": {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "integer"}]},
                   "rating": {"anyOf": [{"type": "number"}, {"type": "null"}]}}}
FEEDBACK_EXAMPLE = {"request_id": "0f3c...", "item": "318", "rating": 4.5}


def _id(v: str) -> str:
    """A user or item id as text: valid Unicode, no comma (the log keeps `exclude` comma-separated)."""
    from pydantic_core import PydanticCustomError

    from mlcycle.serving.request import encodable

    if "," in v:
        raise PydanticCustomError("comma", "an id holds no comma; send each item as its own list element")
    return encodable(v)


def endpoint(ep):
    """The /recommend endpoint of a recommender: one user, k, the items not to recommend. Types are
    strict (no true for 1, no "5" for 5), numbers bounded, ids valid Unicode without commas."""
    from fastapi import Body
    from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

    Id = Annotated[StrictStr, Field(min_length=1, max_length=200), AfterValidator(_id)] | \
        Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]

    class RecommendRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"user": "1", "k": 10, "exclude": []}]})
        user: Id  # the user id
        k: Annotated[StrictInt, Field(ge=1, le=1000)] = 10  # items in the list
        exclude: Annotated[list[Id], Field(max_length=100_000)] = []  # items not to recommend (e.g. already seen)

    def recommend(body: Annotated[RecommendRequest, Body()]):
        """Ranked items and scores for one user; a user never seen gets content-based or popular items (`source`)."""
        return answer(ep, body)

    return recommend


def answer(ep, body):
    """One user's list from the served version (`ep`: the server's `Endpoints`), logged and remembered
    for feedback; a 409 when the served version is not a recommender."""
    s, predlog, metrics = ep.s, ep.predlog, ep.metrics
    served = ep.holder.current
    if served.meta.get("task") not in TASK.objectives:
        raise ClientError(409, "not a recommender", None,
                          f"version {served.version} is not a recommender (task {served.meta.get('task')}); use /predict")
    if not predlog.healthy and s.log_failure == "refuse":
        raise ClientError(503, "prediction log unavailable", None,
                          f"the prediction log cannot be written ({type(predlog.error).__name__}); retry later")
    user, exclude = str(body.user), ",".join(str(i) for i in body.exclude)
    out = served.model.predict(pd.DataFrame({"user": [user], "k": [body.k], "exclude": [exclude]}))
    items, scores = out["item"].astype(str).tolist(), [float(v) for v in out["score"]]
    source = str(out["source"].iloc[0]) if len(out) else "none"
    rid = uuid.uuid4().hex
    try:
        predlog.submit(Batch({"user": [user], "k": [body.k], "exclude": [exclude]},
                             {"prediction": [json.dumps(items)], "score": [scores[0] if scores else None],
                              "source": [source]}, served.version, rid, dt.datetime.now(dt.UTC)))
    except LogFull as exc:
        raise ClientError(503, "busy", None, f"{exc}; retry later") from None
    ep.feedback_store.known.add(rid, 1, items)  # clicks or ratings on these items: POST /feedback
    metrics.rows.inc(1)
    metrics.log_rows.set(predlog.pending)
    body_out = {"user": user, "items": [{"item": i, "score": v} for i, v in zip(items, scores, strict=True)],
                "source": source, "known_user": source == served.meta.get("model"),
                "model_name": served.info.get("name"), "model_version": served.version, "request_id": rid}
    return json_response(body_out, 200, rid, {"X-Model-Version": served.version, "X-Route": "champion"})  # labels its metrics


def check_rating(value, meta: dict, where: str) -> float | None:
    """A recommender's rating as stored: None (a click) or a finite number within the model's
    rating bounds (recommend.rating_min / rating_max when it was trained)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClientError(422, "wrong type", where, f"the rating must be a finite number (or left out for a click), got {value!r}")
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an integer of hundreds of digits
        finite = False
    if not finite:
        raise ClientError(422, "out of range", where, f"the rating must be a finite number, got {str(value)[:40]!r}")
    lo, hi = meta.get("rating_min"), meta.get("rating_max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ClientError(422, "out of range", where, f"the rating must be within [{lo}, {hi}], got {value!r}")
    return float(value)


def checked_feedback(items: list, meta: dict, known: KnownRequests, labelled: set,
                            prefix: str = "") -> list[dict]:
    """A recommender's entries as stored ({request_id, row, item, label}); a ClientError naming the
    first bad one (see the module docstring)."""
    out, seen = [], set()
    for i, e in enumerate(items):
        at = f"{prefix}[{i}]." if len(items) > 1 or prefix else ""
        rid = entry_request_id(e, at, ("request_id", "item", "rating"),
                               "an entry of a recommender has request_id, item and rating (optional: left out for a click)",
                               "the request id a /recommend answer gave (its request_id)")
        item = e.get("item")
        if item is None:
            raise ClientError(422, "missing field", f"{at}item", "the item of the answer the user clicked or rated")
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ClientError(422, "wrong type", f"{at}item", f"the item id as text or an integer, got {item!r}")
        item = str(item)
        listed = answer_of(known, rid, at, "recommendation", ROUTE)
        if item not in listed:
            raise ClientError(422, "not in the answer", f"{at}item",
                              f"item {item!r} was not among the {len(listed)} items of request {rid}: "
                              "feedback is on the items the answer listed")
        row = listed.index(item)
        rating = check_rating(e.get("rating"), meta, f"{at}rating")
        claim(labelled, seen, rid, row, f"{at}item",
              f"item {item!r} of request {rid} already has feedback; feedback is never replaced")
        out.append({"request_id": rid, "row": row, "item": item, "label": rating})
    return out


def feedback_items(frame: pd.DataFrame) -> list[dict]:
    """The entries of a recommender's feedback file (columns request_id, item, optional rating)."""
    file_columns(frame, ("request_id", "item"), ("rating",),
                 "(and rating for rated items; without it each row is a click)")
    items = []
    for rec in frame.to_dict("records"):
        e = {"request_id": None if pd.isna(rec["request_id"]) else str(rec["request_id"]), "item": cell_value(rec["item"])}
        if isinstance(e["item"], float) and e["item"].is_integer():
            e["item"] = int(e["item"])
        if "rating" in rec:
            e["rating"] = cell_value(rec["rating"])
        items.append(e)
    return items
