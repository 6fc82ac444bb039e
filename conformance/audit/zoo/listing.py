"""``conformance audit --list``: every built-in factory with its library, the installed version and its specs."""

from __future__ import annotations

from . import availability, catalogue


def rows(probe: bool = False) -> list[dict]:
    """One dict per factory: name, library, version (or None), available, reason, spec, intent, modes, summary."""
    out = []
    for entry in catalogue():
        avail = availability(entry, probe=probe)
        out.append({"name": entry.name, "library": entry.library, "version": avail.version,
                    "available": avail.available, "reason": avail.reason, "spec": entry.spec,
                    "intent": entry.intent, "modes": list(entry.device_init), "summary": entry.summary})
    return out


def listing(probe: bool = False) -> str:
    """The table ``--list`` prints, then a line per unavailable factory with its reason."""
    table = rows(probe)
    if not table:
        return "no zoo factories are defined"
    head = ("name", "library", "version", "spec (code)", "intent spec", "modes")
    body = [(r["name"], r["library"], r["version"] or "-", r["spec"], r["intent"] or "-",
             "+".join(r["modes"])) for r in table]
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body]
    missing = [r for r in table if not r["available"]]
    libraries = sorted({r["library"] for r in table})
    lines.append(f"{len(table)} factories from {len(libraries)} libraries ({', '.join(libraries)}); "
                 f"{len(table) - len(missing)} available here" + ("" if probe else " (installed; --probe imports "
                                                                               "each library)"))
    for r in missing:
        lines.append(f"  unavailable: {r['name']}: {r['reason']}")
    lines.append("audit one with `conformance audit NAME`; every one with `conformance realworld`")
    return "\n".join(lines)
