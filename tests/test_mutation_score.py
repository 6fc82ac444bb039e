"""Mutation score in CI: every mutant of ``tests/faulty/catalogue.py`` is caught by its named check (one
``conformance run`` holding every faulty backend and the references, plus the model audits), the correct references
pass the same selections, and the README table is the one the catalogue generates."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import pytest

from tests.faulty.catalogue import MUTANTS, upstream_classes
from tools import mutation_score as ms

ROOT = Path(__file__).resolve().parents[1]


# -- the catalogue itself (fast) -------------------------------------------------------------------------------------
def test_catalogue_rows_are_unique_and_complete():
    keys = Counter(m.key for m in MUTANTS)
    assert not [k for k, c in keys.items() if c > 1], "duplicate catalogue rows"
    for m in MUTANTS:
        assert m.upstream and m.bug and m.check and m.kind in ("run", "audit"), m
        if m.kind == "run":
            assert m.select.startswith(m.check.split("/", 1)[1].split("[")[0] + "[" + m.backend), m.select


def test_at_least_20_upstream_bug_classes():
    assert len(upstream_classes()) >= 20, upstream_classes()


def test_every_run_mutant_is_registered_by_its_module():
    for m in MUTANTS:
        module = importlib.import_module(m.adapters)
        if m.kind == "run":
            names = {f"{p.framework}:{d}" for p in module.PROVIDERS for d in p.devices}
            assert m.backend in names, (m.backend, m.adapters)
        else:
            assert callable(getattr(module, m.backend.split(":")[-1]))


def test_readme_table_matches_catalogue():
    """The README section is what ``tools/mutation_score.py`` writes when every mutant is caught."""
    want = ms.expected_markdown()
    got = ms.readme_section(ROOT / "README.md")
    assert got == want, f"README mutation-score table is stale; regenerate with: {ms.REGENERATE}"


# -- the run (one subprocess for every `conformance run` mutant, one per audited model) ------------------------------
@pytest.fixture(scope="module")
def score(tmp_path_factory):
    raw = ms.run_all(tmp_path_factory.mktemp("mutation"))
    assert raw["results"] is not None, raw["errors"]
    return ms.score(raw)


@pytest.mark.parametrize("key", [m.key for m in MUTANTS])
def test_mutant_caught_by_named_check(score, key):
    (row,) = [r for r in score["mutants"] if f"{r['mutant']} | {r['check']} | {r['dtype'] or '-'}" == key]
    assert row["caught"], (f"{row['mutant']} ({row['upstream']}) not caught by {row['check']} {row['dtype']} "
                           f"[{row['test']}]: outcome {row['outcome']}, failed {row['failed_tests']}, "
                           f"{row['message']}")


def test_references_pass_the_same_selections(score):
    bad = [(r["check"], r["reference"], r["reference_outcome"]) for r in score["mutants"]
           if r["reference_outcome"] not in ("passed", "xfailed")]
    assert not bad, bad
    assert score["caught"] == score["total"]
