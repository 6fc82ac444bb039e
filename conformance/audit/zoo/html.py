"""``reports/realworld/index.html`` from the merged results (jinja2, autoescaped; reads the results dict only)."""

from __future__ import annotations

import jinja2

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("conformance.audit.zoo", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)


def headline(doc: dict) -> str:
    """``N findings (K unreviewed) over F factories in R runs``."""
    findings = doc.get("findings", [])
    unreviewed = sum(not f["reviewed"] for f in findings)
    factories = {e["name"] for r in doc.get("runs", []) for e in r.get("entries", []) if e["status"] != "unavailable"}
    return (f"{len(findings)} finding(s)" + (f" ({unreviewed} UNREVIEWED)" if unreviewed else "")
            + f" over {len(factories)} factories in {len(doc.get('runs', []))} run(s)")


def render(doc: dict) -> str:
    return _ENV.get_template("realworld.html.j2").render(headline=headline(doc), lines=doc.get("summary", []),
                                                        runs=doc.get("runs", []))
