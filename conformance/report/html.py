"""The HTML report: one self-contained file (inline styles, script and plots; no network) rendered
with jinja2 from ``results.json`` data and the files named on the command line only.

The first line (``<title>`` and the first heading) is the run's status and counts (:func:`headline`): an
interrupted or empty run says so in a banner, and ``--strict`` violations are listed right below it.
Then "What to fix first" (:func:`fix_first`): per backend its defects ranked by effect
(:mod:`conformance.report.triage`), each with its repro command and a link to its failure section, and its deviations
counted by kind. Sections: summary and design; backends (unavailable ones listed once, with the reason, and given no
matrix column); the matrix of checks (grouped by area) against backend:dtype with counts and a filter, cells coloured
by severity (defect, deviation, pass; by outcome in files written before severity), each failing cell a link to its
failure section (``#r-…``, which links back to its row, ``#m-…``); every failure and known failure with its plots
(ECDF vs expected CDF, QQ, histogram, and under each its difference from the reference with the band at the check's
alpha), moments, p-values, effect sizes (failing verdict rows marked), seed and repro; http(s) URLs in messages and
evidence are links; sections fed by the records' typed attachments (:mod:`conformance.report.attachments`:
distribution plots, activation error maps, seed contracts, the cross-framework initializer
table, model-init audits), with attachments it cannot read listed and explained; the mutation
score when one is given; the environment.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator

import jinja2
from markupsafe import Markup, escape

from . import triage
from .attachments import ActivationErrorMap, DistributionPlot, ModelInitAudit, SeedContract, Unreadable, of_record
from .figures_pool import FigureJob, draw_all
from .load import normalise

#: http(s) URLs in free text (messages, evidence, known failures' upstream): made links; nothing else is.
_URL = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?)]}'\""


def linkify(text: object) -> Markup:
    """``text`` escaped for HTML, with every http(s) URL in it a link (``rel=noopener``, opened in a new tab).
    Closing punctuation that ends a sentence is left out of the URL unless it is balanced inside it."""
    s = "" if text is None else str(text)
    out, pos = [], 0
    for m in _URL.finditer(s):
        url = m.group(0)
        while url and url[-1] in _URL_TAIL and not (url[-1] == ")" and url.count("(") >= url.count(")")):
            url = url[:-1]
        if len(url) <= len("https://"):
            continue
        out.append(escape(s[pos:m.start()]))
        out.append(Markup('<a class="ext" href="{0}" rel="noopener noreferrer" target="_blank">{0}</a>').format(url))
        pos = m.start() + len(url)
    out.append(escape(s[pos:]))
    return Markup("").join(out)


def fmt(value: object, spec: str = "%.3g") -> str:
    """A number formatted with ``spec``; None as empty; anything else (``'nan'`` as stored) as written."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return spec % value
    return str(value)


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("conformance.report", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
_ENV.filters["linkify"] = linkify
_ENV.filters["fmt"] = fmt

SYMBOL = {"passed": "✓", "failed": "✗", "skipped": "–", "xfailed": "K", "xpassed": "K✓", "error": "E"}
PROBLEMS = ("failed", "error", "xfailed", "xpassed")
#: At most this many failure sections get plots (the rest list their numbers only).
MAX_PLOTS = 200


def column_of(record: dict) -> str:
    return f"{record['backend']}:{record['dtype']}" if record["dtype"] else record["backend"]


def _slug(prefix: str, *parts: object) -> str:
    """An HTML id for ``parts``: readable (letters, digits, ``-``, ``_``) and unique (a hash of the exact text)."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:60]
    return f"{prefix}-{readable}-{hashlib.sha1(text.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def record_anchor(record: dict) -> str:
    """The id of a record's failure section (``#r-…``); the matrix cell links to it."""
    return _slug("r", record["id"], record["backend"], record["dtype"], record.get("machine"))


def row_anchor(check_id: str) -> str:
    """The id of a check's matrix row (``#m-…``); its failure sections link back to it."""
    return _slug("m", check_id)


def headline(results: dict) -> dict:
    """The report's first line (title and first heading): the run's status and its counts, and the CSS class of the
    banner (``complete``, ``interrupted``, ``empty``; ``strict`` when ``--strict`` found violations)."""
    s, status = results["summary"], results["status"]
    counts = f"{s['passed']} passed, {s['failed']} failed" + (f", {s['error']} errors" if s["error"] else "")
    strict = results.get("strict") or {}
    violations = strict.get("violations") or []
    if status == "interrupted":
        text, css = f"INTERRUPTED run — partial results: {counts}", "interrupted"
    elif status == "empty":
        text, css = f"EMPTY run — no check was run: {counts}", "empty"
    else:
        text, css = f"Conformance report: {counts}", "complete"
    if strict.get("enabled") and violations:
        text += f" — STRICT: {len(violations)} violation{'s' if len(violations) != 1 else ''}"
        css = css if css != "complete" else "strict"
    return {"text": text, "css": css, "status": status}


def unavailable(results: dict) -> dict[str, str]:
    """Backends the run could not use here (``available: false``), with the reason: listed once, no matrix column."""
    return {spec: str(b.get("reason") or "unavailable") for spec, b in results.get("backends", {}).items()
            if not b.get("available")}


_UNAVAILABLE_VIOLATION = re.compile(r"requested backend (\S+) is unavailable: ")


def strict_lines(strict: dict) -> list[str]:
    """The lines of the ``--strict`` box. Without ``--strict`` (an informational box) the requested backends that are
    unavailable become one line, since the "Not run here" list already names each with its reason."""
    lines = list(strict.get("violations") or [])
    if strict.get("enabled"):
        return lines
    gone = [v for v in lines if _UNAVAILABLE_VIOLATION.match(v)]
    if len(gone) < 2:
        return lines
    names = ", ".join(_UNAVAILABLE_VIOLATION.match(v).group(1) for v in gone)
    return [v for v in lines if v not in gone] + [
        f"{len(gone)} requested backends are unavailable here ({names}); each is listed with its reason under "
        "\"Not run here\""]


def severity_of(record: dict) -> str | None:
    """``"defect"``, ``"deviation"`` or None. The record's ``severity``; in files written before severity existed (no
    such field, or a value this version does not know), derived from the outcome: a failure, an error and a known
    failure were defects."""
    severity = record.get("severity", ...)
    if severity in ("defect", "deviation") or severity is None:
        return severity
    return "defect" if record["outcome"] in ("failed", "error", "xfailed") else None


def cell_class(record: dict) -> str:
    """The CSS classes of a record's matrix cell: its outcome, then ``sev-defect``, ``sev-deviation`` or ``sev-pass``
    (the cell's colour), ``known`` for a known failure (a marker on the defect colour)."""
    severity = severity_of(record)
    classes = [record["outcome"]]
    if severity:
        classes.append(f"sev-{severity}")
    elif record["outcome"] == "passed":
        classes.append("sev-pass")
    if record["outcome"] == "xfailed":
        classes.append("known")
    if record.get("merge_flag") == "conflict":
        classes.append("conflict")
    return " ".join(classes)


def cell_mark(record: dict) -> str:
    """The symbol in a record's matrix cell: the outcome's, ``≈`` for a deviation that passed (default tier)."""
    mark = "≈" if severity_of(record) == "deviation" and record["outcome"] == "passed" else SYMBOL[record["outcome"]]
    return mark + ("!" if record.get("merge_flag") == "conflict" else "")


#: At most this many defects per backend are listed in "What to fix first" before a "N more" that expands.
FIX_FIRST_SHOWN = 10


def _one_line(text: object, limit: int = 200) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def fix_first(results: dict, records: list[dict], anchor_of) -> dict:
    """The "What to fix first" section: per backend of the matrix (unavailable ones left out), its defects ranked
    (:func:`conformance.report.triage.defects`; the first :data:`FIX_FIRST_SHOWN`, the rest under "N more") and its
    deviations counted by kind; backends with new defects (not known failures) first, then those with known failures
    only, then those with deviations only, then the rest.
    ``anchor_of(record)``: the id of the record's failure section. ``legacy``: the file predates severity (failures
    are then listed as defects, in check order, with no effect)."""
    hidden = unavailable(results)
    shown = [r for r in records if r["backend"] not in hidden]
    legacy = not any("severity" in r for r in records)
    judged = [{**r, "severity": severity_of(r), "_record": r} for r in shown]
    ranked, grouped = triage.defects(judged), triage.deviations(judged)
    backends = {spec for spec, b in results.get("backends", {}).items() if b.get("available")}
    backends |= {r["backend"] for r in shown}
    out = []
    for spec in sorted(backends):
        items = [{"record": d["_record"], "anchor": anchor_of(d["_record"]) or record_anchor(d["_record"]),
                  "where": f"{d['id']} [{d.get('dtype') or '-'}]",
                  "kind": _one_line(d.get("kind") or ("crash" if d["outcome"] == "error" else "defect"), 60),
                  "effect": triage.effect_text(d) if "magnitude" in d else "",
                  "explanation": _one_line(d.get("explanation") or d.get("message")),
                  "known": d["outcome"] == "xfailed", "repro": d.get("repro") or ""}
                 for d in ranked.get(spec, [])]
        deviations = [(_one_line(kind, 60), n) for kind, n in grouped.get(spec, [])]
        out.append({"backend": spec, "defects": items[:FIX_FIRST_SHOWN], "more": items[FIX_FIRST_SHOWN:],
                    "n_defects": len(items), "n_known": sum(i["known"] for i in items), "deviations": deviations,
                    "n_deviations": sum(n for _, n in deviations),
                    "ran": any(r["backend"] == spec and r["outcome"] != "skipped" for r in shown)})
    out.sort(key=lambda b: (0 if b["n_defects"] > b["n_known"] else 1 if b["n_defects"] else 2 if b["n_deviations"]
                            else 3))
    tier = results.get("tier") if results.get("tier") in ("default", "strict") else "default"
    return {"backends": out, "legacy": legacy, "tier": tier}


def severity_counts(results: dict, records: list[dict]) -> dict[str, int] | None:
    """Defects and deviations of the run: ``summary.defects`` / ``summary.deviations`` when the file has them, else
    counted from the records; None for a file written before severity existed."""
    summary = results["summary"]
    if not any("severity" in r for r in records) and "defects" not in summary:
        return None
    out = {}
    for key, severity in (("defects", "defect"), ("deviations", "deviation")):
        given = summary.get(key)
        ok = isinstance(given, int) and not isinstance(given, bool)
        out[key] = given if ok else sum(severity_of(r) == severity for r in records)
    return out


Rows = list[tuple[str, list[tuple[str, dict]]]]


def matrix(records: list[dict], hidden: Collection[str] = ()) -> tuple[list[str], Rows, dict]:
    """Columns, rows grouped by area ``[(area, [(check id, {column: record})])]`` and per-column counts. Records of
    the backends in ``hidden`` (unavailable here: all skipped) make no column."""
    records = [r for r in records if r["backend"] not in hidden]
    columns = sorted({column_of(r) for r in records})
    rows: dict[str, dict] = defaultdict(dict)
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        rows[r["id"]][column_of(r)] = r
        counts[column_of(r)][r["outcome"]] += 1
    areas: dict[str, list] = defaultdict(list)
    for cid, cells in sorted(rows.items()):
        areas[cid.split("/", 1)[0]].append((cid, cells))
    return columns, sorted(areas.items()), counts


def _sample_of(record: dict, test: str) -> tuple[int | None, float | None]:
    """(n, alpha) of the verdict named ``test`` (the one a plot illustrates), else the record's n."""
    for v in record["verdicts"]:
        if v["test"] == test and isinstance(v.get("n"), int) and v["n"] > 0:
            alpha = v.get("alpha")
            return v["n"], alpha if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else None
    return (record["n"] or None), None


def _figure(record: dict, atts: list) -> list[tuple[str, FigureJob]]:
    """The job drawing the distribution plots (ECDF, QQ, histogram and their residuals) of the record's first
    ``distribution_plot`` attachment, with the attachment's name (none without one)."""
    for name, att in atts:
        if isinstance(att, DistributionPlot):
            n, alpha = _sample_of(record, att.test)
            title = f"{record['id']} on {record['backend']} {record['dtype'] or ''}"
            return [(name, FigureJob("distribution_figure", (att, title), (("n", n), ("alpha", alpha))))]
    return []


def _error_maps(record: dict, atts: list) -> list[tuple[str, FigureJob]]:
    """One job per ``activation_error_map`` attachment, with the attachment's name."""
    out = []
    for name, att in atts:
        if isinstance(att, ActivationErrorMap):
            title = f"{record['id']} on {record['backend']} {record['dtype'] or ''}".rstrip()
            out.append((name, FigureJob("error_map_figure",
                                        (att.x, att.err, att.nan_x, title + (f": {att.test}" if att.test else "")))))
    return out


def _drawn(named: list[tuple[str, FigureJob]], results: Iterator) -> tuple[list[str], list[str]]:
    """The figures of ``named`` (their results taken in order from ``results``), and why any could not be drawn."""
    figures, notes = [], []
    for name, _ in named:
        uri, error = next(results)
        if uri is None:
            notes.append(f"attachment {name!r} could not be drawn: {error}")
        else:
            figures.append(uri)
    return figures, notes


def _moments(record: dict) -> list[dict]:
    rows = []
    for v in record["verdicts"]:
        for key in ("mean", "std"):
            if key in (v.get("observed") or {}) and key in (v.get("expected") or {}):
                rows.append({"what": key, "observed": v["observed"][key], "expected": v["expected"][key],
                             "test": v["test"], "pvalue": v.get("pvalue")})
    return rows


def _contracts(records: list[dict], decoded: list[list]) -> list[dict]:
    """Per backend: the seed contracts it declared and what the checks observed (``seed_contract`` attachments)."""
    return [{"backend": r["backend"], "check": r["id"], "contract": att.statement, "value": att.value,
             "source": att.source, "observed": att.behaviour, "outcome": r["outcome"]}
            for r, atts in zip(records, decoded, strict=True) for _, att in atts if isinstance(att, SeedContract)]


#: The per-tensor fields of a model-init audit the report shows, with their defaults.
_TENSOR = {"name": "", "kind": "", "status": "", "rule": "", "rule_where": "", "expected": {}, "observed": {},
           "message": ""}


def _depth_jobs(records: list[dict], decoded: list[list]) -> list[tuple[ModelInitAudit, FigureJob]]:
    """The depth figure of every model-init audit that has depth fits."""
    return [(audit, FigureJob("depth_figure", (audit.depth, f"{audit.spec} ({audit.device_init}) on {r['backend']}")))
            for r, atts in zip(records, decoded, strict=True) for _, audit in atts
            if isinstance(audit, ModelInitAudit) and audit.depth]


def _audits(records: list[dict], decoded: list[list], depth: dict[int, tuple]) -> list[dict]:
    """Model-init audits attached by the model_init checks: per-tensor rows and a depth figure (``depth``: the drawn
    figures of :func:`_depth_jobs` by ``id`` of the audit)."""
    out = []
    for r, atts in zip(records, decoded, strict=True):
        for _, audit in atts:
            if not isinstance(audit, ModelInitAudit):
                continue
            figure, note = None, ""
            if id(audit) in depth:
                figure, error = depth[id(audit)]
                if figure is None:
                    note = f"the depth figure could not be drawn: {error}"
            counts = audit.counts if isinstance(audit.counts, dict) else {}
            tensors = [{**_TENSOR, **t} for t in (audit.tensors if isinstance(audit.tensors, list) else [])
                       if isinstance(t, dict)]
            for t in tensors:
                t["expected"] = t["expected"] if isinstance(t["expected"], dict) else {}
                t["observed"] = t["observed"] if isinstance(t["observed"], dict) else {}
            out.append({"record": r, "audit": audit, "counts": counts, "tensors": tensors, "figure": figure,
                        "note": note})
    return out


def _unreadable(records: list[dict], decoded: list[list]) -> list[dict]:
    """Attachments of an unknown kind or version, or malformed: listed with the reason, never dropped silently."""
    return [{"record": r, "name": att.name, "kind": att.kind, "version": att.version, "reason": att.reason}
            for r, atts in zip(records, decoded, strict=True) for _, att in atts if isinstance(att, Unreadable)]


def _without_capability(results: dict, capability: str) -> list[str]:
    """Available backends that do not declare ``capability`` (their checks of it were not run)."""
    return [spec for spec, b in results.get("backends", {}).items()
            if b.get("available") and capability not in (b.get("capabilities") or [])]


def render_resume_page(resume: list[dict]) -> str:
    """A page of resume audits alone (rows of :func:`conformance.report.load.load_resume_audits`)."""
    return _ENV.get_template("resume.html.j2").render(resume=resume)


def render_html(results: dict, named_table: list[dict] | None = None, mutation_score: dict | None = None,
                resume: list[dict] | None = None) -> str:
    """The report of ``results`` (a loaded ``results.json``). ``named_table`` replaces the named-initializer
    rows built from the attachments; ``mutation_score`` (a loaded ``mutation_score.json``) adds its section;
    ``resume`` (rows of :func:`conformance.report.load.load_resume_audits`) adds the resume audits.
    Reads no file: everything shown comes from the arguments; a malformed ``results`` raises
    :class:`~conformance.report.load.MalformedResults` naming the field."""
    results = normalise(results)
    records = results["records"]
    decoded = [of_record(r) for r in records]
    not_run = unavailable(results)
    columns, areas, counts = matrix(records, not_run)
    problems, anchors, used = [], {}, set()
    shown = [(r, atts) for r, atts in zip(records, decoded, strict=True) if r["outcome"] in PROBLEMS]
    # every figure of the page drawn at once (in worker processes when there are many: figures_pool)
    plotted = [(_figure(r, atts), _error_maps(r, atts)) if i < MAX_PLOTS else ([], [])
               for i, (r, atts) in enumerate(shown)]
    depth_jobs = _depth_jobs(records, decoded)
    drawn = iter(draw_all([job for dist, maps in plotted for _, job in dist + maps] + [job for _, job in depth_jobs]))
    for (r, _), (dist, maps) in zip(shown, plotted, strict=True):
        figures, notes = _drawn(dist, drawn)
        error_maps, map_notes = _drawn(maps, drawn)
        anchor = record_anchor(r)
        while anchor in used:  # the same check, backend and dtype twice in one file
            anchor += "-x"
        anchors[id(r)] = anchor
        used.add(anchor)
        problems.append({"record": r, "anchor": anchor, "row": row_anchor(r["id"]),
                         "figure": figures[0] if figures else None, "error_maps": error_maps,
                         "plot_notes": notes + map_notes, "moments": _moments(r)})
    depth = {id(audit): next(drawn) for audit, _ in depth_jobs}
    if named_table is None:
        from .named_table import display, rows

        named_table = display(rows(records))
    html = _ENV.get_template("report.html.j2").render(
        results=results, headline=headline(results), columns=columns, areas=areas, counts=counts,
        fix=fix_first(results, records, lambda r: anchors.get(id(r))), not_run=not_run,
        strict_lines=strict_lines(results.get("strict") or {}),
        severity_counts=severity_counts(results, records), severity_of=severity_of, cell_class=cell_class,
        cell_mark=cell_mark, effect_text=triage.effect_text,
        problems=problems, cell_anchor=lambda r: anchors.get(id(r)), row_anchor=row_anchor, symbol=SYMBOL,
        contracts=_contracts(records, decoded), named_table=named_table or [],
        named_not_run=_without_capability(results, "named_init"), audits=_audits(records, decoded, depth),
        unreadable=_unreadable(records, decoded), mutation=mutation_score, resume=resume or [])
    return html.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from JSON escapes cannot be written
