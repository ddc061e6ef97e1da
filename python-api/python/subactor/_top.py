"""``python -m subactor top``: a runtime's actors in the terminal, read from its
observation endpoint (``Runtime(observe=...)``), the JSON the live view reads too."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class TopError(Exception):
    """The endpoint could not be read, or did not answer with a snapshot."""


def snapshot_url(endpoint: str) -> str:
    """The snapshot's URL at ``host:port`` or ``http://host:port[/]``."""
    base = endpoint if "://" in endpoint else f"http://{endpoint}"
    return base.rstrip("/") + "/api/metrics"


def fetch(endpoint: str, timeout: float = 5.0) -> dict[str, Any]:
    """Reads one snapshot from the endpoint."""
    url = snapshot_url(endpoint)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only)
            body = response.read()
    except (urllib.error.URLError, OSError) as e:
        raise TopError(f"cannot read {url}: {e}") from e
    try:
        value = json.loads(body)
    except ValueError as e:
        raise TopError(f"{url} did not answer with a subactor snapshot: {e}") from e
    if not isinstance(value, dict) or not isinstance(value.get("actors"), list):
        raise TopError(f"{url} did not answer with a subactor snapshot: no 'actors' list")
    return value


def _number(n: object) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e4:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.1f}"


def _duration(s: object) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f}us"
    if s < 1:
        return f"{s * 1e3:.1f}ms"
    return f"{s:.2f}s"


def _clip(s: str, width: int) -> str:
    return s if len(s) <= width else s[: max(0, width - 1)] + "…"


def render(snapshot: dict[str, Any], width: int = 160) -> str:
    """One screen: the totals, then the actors as a tree (children under their
    supervisor)."""
    totals = snapshot.get("totals", {})
    actors: list[dict[str, Any]] = snapshot["actors"]
    up = float(snapshot.get("at", 0.0)) - float(snapshot.get("started_at", 0.0))
    lines = [
        f"subactor  actors {len(actors)}  msg/s {_number(totals.get('rate'))}  handled {_number(totals.get('handled'))}"
        f"  failed {_number(totals.get('failed'))}  restarts {_number(totals.get('restarts'))}"
        f"  dead letters {_number(totals.get('dead_letters'))}  up {up:.0f}s"
        + ("" if snapshot.get("enabled", True) else "  (metrics off)"),
        f"{'ACTOR':<28} {'PLACEMENT':<11} {'STATE':<8} {'MAILBOX':>11} {'MSG/S':>8} {'HANDLED':>9} {'FAILED':>7}"
        f" {'P50':>8} {'P99':>8} {'RST':>4}  LAST FAILURE",
    ]
    ids = {a["id"] for a in actors}
    children: dict[int, list[dict[str, Any]]] = {}
    for a in actors:
        if a.get("parent") in ids:
            children.setdefault(a["parent"], []).append(a)
    rows: list[tuple[str, dict[str, Any]]] = []

    def walk(a: dict[str, Any], prefix: str, last: bool, depth: int) -> None:
        rows.append(("" if depth == 0 else prefix + ("└─ " if last else "├─ "), a))
        kids = children.get(a["id"], [])
        inner = "" if depth == 0 else prefix + ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1, depth + 1)

    for a in actors:
        if a.get("parent") not in ids:
            walk(a, "", True, 0)
    for prefix, a in rows:
        label = a["name"] if a.get("name") else f"#{a['id']}"
        placement = f"node {a['node']}" if a.get("node") else str(a.get("placement", ""))
        failure = (a.get("last_failure") or {}).get("message", "").replace("\n", " ")
        h = a.get("handler_seconds", {})
        line = (
            f"{_clip(prefix + label, 28):<28} {_clip(placement, 11):<11} {a.get('state', ''):<8}"
            f" {str(a.get('mailbox_depth')) + '/' + str(a.get('mailbox_capacity')):>11}"
            f" {_number(a.get('rate')):>8} {_number(a.get('handled')):>9} {_number(a.get('failed')):>7}"
            f" {_duration(h.get('p50')):>8} {_duration(h.get('p99')):>8} {_number(a.get('restarts')):>4}  {failure}"
        )
        lines.append(_clip(line, width))
    letters = snapshot.get("dead_letters") or []
    if letters:
        lines.append("")
        lines.append("latest dead letters:")
        for d in reversed(letters[-5:]):
            lines.append(f"  {d.get('reason', '')} -> {d.get('name') or '#' + str(d.get('recipient'))}")
    return "\n".join(lines) + "\n"
