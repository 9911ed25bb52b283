"""Canary and shadow serving (params `serve.release`): which model answers which row.

The champion and a candidate (the `serve.release.candidate` alias, `challenger` by default) are
both loaded. In `canary` mode a row is answered by the candidate when the stable hash of its
routing key falls below `share`; the key is the row's `key` column, else the request's routing
header, else the request id (then one request, not one entity, sees one model). The hash is
BLAKE2b, the same in every process and on every restart, so one entity keeps seeing one model
while the share is unchanged, and raising the share only moves entities towards the candidate.
In `shadow` mode the champion answers every row and the candidate scores the same rows after the
answer is sent; its rows are logged with the route `shadow` and never returned.

With no candidate loaded (its alias names no version, or the same version as the champion) the
champion answers everything and the share is 0.

A task whose serving cannot route a candidate (its `Task.releases` lacks the mode: the recommender's
`/recommend` and the forecast's `/forecast` answer from the champion alone) is refused a canary or shadow (`refusal`) by
`mlcycle serving start` and `mlcycle release`, rather than reporting a share nobody was served."""

from __future__ import annotations

import hashlib

ROUTES = ("champion", "canary", "shadow")


def refusal(mode: str | None, task) -> str | None:
    """Why release mode `mode` (serve.release.mode) cannot run for `task` (a core.tasks.Task), or None
    when it can (mode off, or one of the task's `releases`)."""
    if not mode or mode == "off" or mode in task.releases:
        return None
    can = " or ".join(task.releases)
    return (f"serve.release.mode {mode}: the {task.name} task's serving cannot route a candidate in {mode} mode "
            f"(its answers all come from the champion, so a {mode} would measure nothing); "
            + (f"it supports {can}; " if can else "")
            + "set serve.release.mode: off (or leave out --release) and compare the versions offline "
            "(`mlcycle model promote --model VERSION --reason ...` decides by hand, audited)")


def bucket(key: object) -> float:
    """A stable number in [0, 1) for a routing key (the same in every process and run)."""
    digest = hashlib.blake2b(str(key).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


class Router:
    """Which rows of a request the candidate answers, from params `serve.release`."""

    def __init__(self, release: dict):
        self.mode = str(release.get("mode") or "off")
        self.share = float(release.get("share") or 0.0)
        self.key = release.get("key") or None
        self.header = str(release.get("header") or "X-Route-Key")

    def share_now(self, active: bool) -> float:
        """The share of requests the candidate scores: `share` in canary, 1 in shadow, 0 off or without a candidate."""
        if not active or self.mode == "off":
            return 0.0
        return self.share if self.mode == "canary" else 1.0

    def canary_rows(self, rows: list[dict], header: str | None, request_id: str) -> list[bool]:
        """Per row: does the candidate answer it (canary mode; all False otherwise)."""
        if self.mode != "canary" or self.share <= 0.0:
            return [False] * len(rows)
        if self.share >= 1.0:
            return [True] * len(rows)
        fallback = header if header else request_id
        if self.key:
            return [bucket(r.get(self.key) if r.get(self.key) is not None else fallback) < self.share for r in rows]
        chosen = bucket(fallback) < self.share
        return [chosen] * len(rows)
