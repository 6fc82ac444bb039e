"""Marks on a junit XML file written by pytest: an interrupted run and ``--strict`` violations become error and
failure test cases, so a CI dashboard that reads only junit cannot show a partial or strict-failing run as green.

Contract: :func:`mark_junit` reads the staged file, adds a ``conformance_status`` property and one test case per
note to the first ``testsuite``, and writes the final file atomically (the staged file is removed). A staged file
that does not parse is moved into place unchanged.
"""

from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from .files import atomic_write


def mark_junit(staged: Path, final: Path, status: str, notes: list[tuple[str, str]]) -> None:
    """Write ``final`` from ``staged`` with ``status`` as a property and ``notes`` (``(kind, text)``, kind
    ``interrupted`` -> an error case, ``strict`` -> a failure case) as test cases."""
    try:
        tree = ET.parse(staged)
    except (ET.ParseError, OSError):
        os.replace(staged, final)
        return
    root = tree.getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        os.replace(staged, final)
        return
    props = suite.find("properties")
    if props is None:
        props = ET.Element("properties")
        suite.insert(0, props)
    ET.SubElement(props, "property", name="conformance_status", value=status)
    for i, (kind, text) in enumerate(notes, 1):
        case = ET.SubElement(suite, "testcase", classname="conformance.run", name=f"{kind}-{i}", time="0")
        tag, counter = ("error", "errors") if kind == "interrupted" else ("failure", "failures")
        ET.SubElement(case, tag, message=text).text = text
        for element in {suite, root}:
            if counter in element.attrib or element is suite:
                element.set(counter, str(int(element.get(counter, "0")) + 1))
            if "tests" in element.attrib or element is suite:
                element.set("tests", str(int(element.get("tests", "0")) + 1))
    atomic_write(final, ET.tostring(root, encoding="utf-8", xml_declaration=True))
    with contextlib.suppress(OSError):
        staged.unlink()
