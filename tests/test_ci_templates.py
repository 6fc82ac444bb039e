"""The CI templates users run the suite with: the reusable GitHub workflow (.github/workflows/conformance.yml, also
linted by actionlint in `nox -s lint`) and the GitLab template (ci/gitlab/conformance.gitlab-ci.yml, for which no
linter exists on PyPI). Both are checked structurally here: same runners and default backends, `conformance run`
with --strict and --report-dir per runner, results kept also on failure, one merge job after every runner, the
command lines accepted by the real CLI parser, and the README naming both files.

PyYAML is not a dependency, so the files are read with :func:`load_yaml`, a parser of the block-style YAML subset
they are written in (it refuses what it does not understand); when PyYAML is installed, both agree."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / ".github" / "workflows" / "conformance.yml"
GITLAB = ROOT / "ci" / "gitlab" / "conformance.gitlab-ci.yml"

#: runner name -> default backends, the same in both templates
RUNNERS = {
    "linux-cpu": ["numpy:cpu", "torch:cpu", "jax:cpu"],
    "macos-arm64": ["mlx:gpu", "torch:mps"],
    "cuda": ["torch:cuda", "jax:gpu"],
}


# --- a parser of the YAML subset the templates use ----------------------------------------------------------------


class YamlSubsetError(ValueError):
    pass


def _strip_comment(text: str) -> str:
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or text[i - 1] in " [{,:"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text: str):
    text = text.strip()
    if not text:
        return None
    if text[0] == '"':
        if not text.endswith('"') or len(text) < 2:
            raise YamlSubsetError(f"unterminated string: {text}")
        return json.loads(text)
    if text[0] == "'":
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"unterminated string: {text}")
        return text[1:-1].replace("''", "'")
    if text[0] == "[":
        if not text.endswith("]"):
            raise YamlSubsetError(f"multi-line flow sequence: {text}")
        inner = text[1:-1].strip()
        return [_scalar(part) for part in _split_flow(inner)] if inner else []
    if text[0] in "{&*!|>%@`":
        raise YamlSubsetError(f"unsupported YAML: {text}")
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if text in ("null", "~"):
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.search(r": |:$", text):
        raise YamlSubsetError(f"plain scalar with ': ': {text}")
    return text


def _split_flow(inner: str) -> list[str]:
    parts, quote, start = [], None, 0
    for i, ch in enumerate(inner):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[]{}":
            raise YamlSubsetError(f"nested flow collection: {inner}")
        elif ch == ",":
            parts.append(inner[start:i])
            start = i + 1
    return parts + [inner[start:]]


_KEY = re.compile(r"""^("[^"]*"|'[^']*'|[^\s'"#\-\[\]{}][^#]*?):(?:\s+(.*))?$""")


class _Parser:
    def __init__(self, text: str) -> None:
        self.raw = text.split("\n")
        self.lines: list[tuple[int, str, int]] = []  # (indent, content, raw line index)
        for n, line in enumerate(self.raw):
            if "\t" in line[: len(line) - len(line.lstrip())]:
                raise YamlSubsetError(f"line {n + 1}: tab in indentation")
            content = _strip_comment(line)
            if content.strip() and content.strip() != "---":
                self.lines.append((len(content) - len(content.lstrip()), content.strip(), n))
        self.i = 0

    def parse(self):
        if not self.lines:
            return None
        node = self.node(self.lines[0][0])
        if self.i != len(self.lines):
            raise YamlSubsetError(f"line {self.lines[self.i][2] + 1}: unexpected indentation")
        return node

    def node(self, indent: int):
        if self.lines[self.i][1].startswith("- ") or self.lines[self.i][1] == "-":
            return self.sequence(indent)
        return self.mapping(indent)

    def sequence(self, indent: int) -> list:
        out = []
        while self.i < len(self.lines):
            ind, text, n = self.lines[self.i]
            if ind < indent or not (text.startswith("- ") or text == "-"):
                break
            if ind > indent:
                raise YamlSubsetError(f"line {n + 1}: unexpected indentation")
            rest = text[1:].strip()
            if not rest:
                self.i += 1
                out.append(self.block_value(indent, n))
            elif _KEY.match(rest):
                self.lines[self.i] = (ind + 2, rest, n)  # "- key: value": a mapping at the dash's indent + 2
                out.append(self.mapping(ind + 2))
            else:
                self.i += 1
                out.append(self.value(rest, indent, n))
        return out

    def mapping(self, indent: int) -> dict:
        out: dict = {}
        while self.i < len(self.lines):
            ind, text, n = self.lines[self.i]
            if ind < indent:
                break
            if ind > indent:
                raise YamlSubsetError(f"line {n + 1}: unexpected indentation")
            match = _KEY.match(text)
            if not match:
                if text.startswith("- "):
                    break  # a sequence at the parent key's indent ends this mapping
                raise YamlSubsetError(f"line {n + 1}: expected 'key: value', got {text!r}")
            key = _scalar(match.group(1)) if match.group(1)[0] in "'\"" else match.group(1)
            if key in out:
                raise YamlSubsetError(f"line {n + 1}: duplicate key {key!r}")
            self.i += 1
            rest = (match.group(2) or "").strip()
            out[key] = self.value(rest, indent, n) if rest else self.block_value(indent, n, same_indent_seq=True)
        return out

    def block_value(self, indent: int, n: int, same_indent_seq: bool = False):
        if self.i < len(self.lines):
            ind, text, _ = self.lines[self.i]
            if ind > indent or (same_indent_seq and ind == indent and text.startswith("- ")):
                return self.node(ind)
        return None

    def value(self, rest: str, indent: int, n: int):
        if rest[0] in "|>":
            return self.block_scalar(rest, indent, n)
        return _scalar(rest)

    def block_scalar(self, header: str, indent: int, n: int) -> str:
        if not re.fullmatch(r"[|>][-+]?", header):
            raise YamlSubsetError(f"line {n + 1}: unsupported block scalar header {header!r}")
        # the block's lines are the raw lines after the header that are blank or indented deeper than `indent`
        body, k = [], n + 1
        while k < len(self.raw) and (not self.raw[k].strip() or len(self.raw[k]) - len(self.raw[k].lstrip()) > indent):
            body.append(self.raw[k])
            k += 1
        while self.i < len(self.lines) and self.lines[self.i][2] < k:
            self.i += 1
        while body and not body[-1].strip():
            body.pop()
        if not body:
            return ""
        cut = min(len(line) - len(line.lstrip()) for line in body if line.strip())
        lines = [line[cut:] for line in body]
        text = "\n".join(lines) if header[0] == "|" else re.sub(r"(?<!\n)\n(?!\n)", " ", "\n".join(lines))
        return text if header.endswith("-") else text + "\n"


def load_yaml(text: str):
    """Parse the block-style YAML subset of the templates (YAML 1.2 scalars: `on` stays a string)."""
    return _Parser(text).parse()


# --- helpers -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gh() -> dict:
    return load_yaml(GITHUB.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def gl() -> dict:
    return load_yaml(GITLAB.read_text(encoding="utf-8"))


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _gitlab_jobs(doc: dict) -> dict[str, dict]:
    """Visible jobs with `extends` resolved (hashes merged deeply, everything else replaced), as GitLab does."""
    reserved = {"variables", "stages", "include", "default", "workflow", "image", "services", "cache"}

    def resolve(name: str) -> dict:
        job = doc[name]
        parents = job.get("extends", [])
        resolved: dict = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            resolved = _merge(resolved, resolve(parent))
        return _merge(resolved, {k: v for k, v in job.items() if k != "extends"})

    return {name: resolve(name) for name in doc if name not in reserved and not name.startswith(".")}


def _script(job: dict) -> str:
    return "\n".join(job["script"])


def _run_parser_flags() -> set[str]:
    from conformance.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {opt for action in sub.choices["run"]._actions for opt in action.option_strings}


def _expr(text: str) -> str:
    """A GitHub expression, ``${{ text }}``."""
    return "${{ " + text + " }}"


def _step(job: dict, predicate) -> dict:
    found = [s for s in job["steps"] if predicate(s)]
    assert len(found) == 1, [s.get("name") or s.get("uses") for s in job["steps"]]
    return found[0]


# --- the parser itself -------------------------------------------------------------------------------------------


def test_yaml_subset_parser():
    doc = load_yaml(
        "a: 1  # comment\n"
        "b: 'x # not a comment'\n"
        "c:\n"
        "  - d: \"two words\"\n"
        "    e: [1, 'f', g]\n"
        "  - plain text: not-a-key\n"
        "h:\n"
        "- i\n"
        "j: |\n"
        "  line one\n"
        "\n"
        "    indented\n"
        "k: >-\n"
        "  folded\n"
        "  text\n"
        "job:name:\n"
        "  on: true\n"
    )
    assert doc == {"a": 1, "b": "x # not a comment", "c": [{"d": "two words", "e": [1, "f", "g"]},
                                                            {"plain text": "not-a-key"}],
                   "h": ["i"], "j": "line one\n\n  indented\n", "k": "folded text", "job:name": {"on": True}}
    for bad in ("a: b: c\n", "a:\n  - x\n  y: 1\n", "a: &anchor 1\n", "a: 1\na: 2\n", "a: {b: 1}\n"):
        with pytest.raises(YamlSubsetError):
            load_yaml(bad)


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_yaml_subset_agrees_with_pyyaml(path):
    yaml = pytest.importorskip("yaml")
    ours = load_yaml(path.read_text(encoding="utf-8"))
    theirs = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in theirs:  # YAML 1.1 reads the key `on` as a boolean; GitHub (and we) read it as the string
        theirs["on"] = theirs.pop(True)
    assert ours == theirs


# --- GitHub Actions ----------------------------------------------------------------------------------------------


def test_github_inputs(gh):
    inputs = gh["on"]["workflow_call"]["inputs"]
    for name in ("package", "python-version", "pip-args", "known-failures", "strict", "adapters", "run-args"):
        assert name in inputs, name
    assert inputs["strict"] == {**inputs["strict"], "type": "boolean", "default": True}
    assert inputs["package"]["default"] == "dl-conformance"
    for key, runner in (("linux-cpu", "linux-cpu"), ("macos", "macos-arm64"), ("cuda", "cuda")):
        assert inputs[key]["type"] == "boolean"
        assert inputs[f"{key}-backends"]["default"].split() == RUNNERS[runner]
        for suffix in ("runs-on", "packages", "pip-args"):
            assert f"{key}-{suffix}" in inputs, f"{key}-{suffix}"
    assert inputs["linux-cpu"]["default"] is True and inputs["macos"]["default"] is True
    assert inputs["cuda"]["default"] is False  # a job waiting for a runner nobody has would hold the whole run
    assert inputs["linux-cpu-runs-on"]["default"] == "ubuntu-latest"
    assert inputs["macos-runs-on"]["default"] == "macos-14"
    assert json.loads(inputs["cuda-runs-on"]["default"]) == ["self-hosted", "linux", "cuda"]
    assert "download.pytorch.org/whl/cpu" in inputs["linux-cpu-pip-args"]["default"]
    assert "jax[cuda12]" in inputs["cuda-packages"]["default"].split()
    assert "mlx" in inputs["macos-packages"]["default"].split()


def test_github_matrix_covers_every_runner_switch(gh):
    step = gh["jobs"]["matrix"]["steps"][0]
    for key, runner in (("LINUX_CPU", "linux-cpu"), ("MACOS", "macos-arm64"), ("CUDA", "cuda")):
        assert f'("{runner}", "{key}")' in step["run"]
        for suffix in ("", "_RUNS_ON", "_BACKENDS", "_PACKAGES", "_PIP_ARGS"):
            assert step["env"][key + suffix] == _expr("inputs." + (key + suffix).lower().replace("_", "-"))
    compile(step["run"], "matrix step", "exec")  # valid Python
    assert gh["jobs"]["matrix"]["outputs"]["matrix"] == "${{ steps.matrix.outputs.matrix }}"


def test_github_run_job(gh):
    job = gh["jobs"]["run"]
    assert job["needs"] == "matrix"
    assert job["runs-on"] == "${{ matrix.runs-on }}"
    assert job["strategy"] == {"fail-fast": False, "matrix": "${{ fromJSON(needs.matrix.outputs.matrix) }}"}
    run = _step(job, lambda s: "conformance run" in s.get("run", ""))
    assert '--report-dir "reports/$NAME"' in run["run"] and run["env"]["NAME"] == "${{ matrix.name }}"
    assert 'if [[ "$STRICT" == "true" ]]; then args+=(--strict); fi' in run["run"]
    assert run["env"]["STRICT"] == "${{ inputs.strict }}"
    assert "--backend" in run["run"] and run["env"]["BACKENDS"] == "${{ matrix.backends }}"
    for flag, env, name in (("--known-failures", "KNOWN_FAILURES", "known-failures"),
                            ("--adapters", "ADAPTERS", "adapters")):
        assert flag in run["run"] and run["env"][env] == _expr(f"inputs.{name}")
    upload = _step(job, lambda s: s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "reports/${{ matrix.name }}/"
    assert upload["with"]["name"] == "${{ inputs.artifact-prefix }}-results-${{ matrix.name }}"
    install = _step(job, lambda s: "pip install" in s.get("run", ""))
    assert install["env"]["PACKAGE"] == "${{ inputs.package }}"
    assert install["env"]["PIP_ARGS"] == "${{ inputs.pip-args }} ${{ matrix.pip-args }}"


def test_github_report_job(gh):
    job = gh["jobs"]["report"]
    assert set(job["needs"]) == {"matrix", "run"}
    assert "!cancelled()" in job["if"]  # also after a failed runner
    download = _step(job, lambda s: s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"]["pattern"] == "${{ inputs.artifact-prefix }}-results-*"
    merge = _step(job, lambda s: "conformance report merge" in s.get("run", ""))
    assert 'conformance report merge "${files[@]}" -o reports' in merge["run"]
    upload = _step(job, lambda s: s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    fail = job["steps"][-1]
    assert fail["if"] == "${{ !cancelled() && needs.run.result != 'success' }}" and "exit 1" in fail["run"]


def test_github_actions_pinned_to_a_major_version(gh):
    for job in gh["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"actions/[a-z-]+@v\d+", step["uses"]), step["uses"]


# --- GitLab ------------------------------------------------------------------------------------------------------


def test_gitlab_variables_match_the_github_defaults(gl, gh):
    variables, inputs = gl["variables"], gh["on"]["workflow_call"]["inputs"]
    for gl_key, gh_key in (("LINUX_CPU", "linux-cpu"), ("MACOS", "macos"), ("CUDA", "cuda")):
        runner = {"LINUX_CPU": "linux-cpu", "MACOS": "macos-arm64", "CUDA": "cuda"}[gl_key]
        assert variables[f"CONFORMANCE_{gl_key}_BACKENDS"].split() == RUNNERS[runner]
        assert variables[f"CONFORMANCE_{gl_key}"] == str(inputs[gh_key]["default"]).lower()
        assert variables[f"CONFORMANCE_{gl_key}_PACKAGES"] == inputs[f"{gh_key}-packages"]["default"]
        assert variables[f"CONFORMANCE_{gl_key}_PIP_ARGS"] == inputs[f"{gh_key}-pip-args"]["default"]
    assert variables["CONFORMANCE_STRICT"] == "true"
    assert variables["CONFORMANCE_PACKAGE"] == inputs["package"]["default"]
    assert variables["CONFORMANCE_RUN_ARGS"] == inputs["run-args"]["default"]
    assert all(isinstance(v, str) for v in variables.values())  # GitLab variables are strings


def test_gitlab_runner_jobs(gl):
    jobs = _gitlab_jobs(gl)
    runner_jobs = {name: job for name, job in jobs.items() if name != "conformance:report"}
    assert set(runner_jobs) == {f"conformance:{runner}" for runner in RUNNERS}
    switches = {"linux-cpu": "LINUX_CPU", "macos-arm64": "MACOS", "cuda": "CUDA"}
    for name, job in runner_jobs.items():
        runner, key = name.split(":", 1)[1], switches[name.split(":", 1)[1]]
        script = _script(job)
        assert "conformance run " in script and '--report-dir "reports/$CONFORMANCE_NAME"' in script
        assert 'if [ "$CONFORMANCE_STRICT" = "true" ]; then set -- "$@" --strict; fi' in script
        assert '--backend "$spec"' in script and "--known-failures" in script and "--adapters" in script
        assert 'echo "$code" > "reports/$CONFORMANCE_NAME/exit-code"' in script
        assert job["variables"] == {"CONFORMANCE_NAME": runner, "CONFORMANCE_BACKENDS": f"$CONFORMANCE_{key}_BACKENDS",
                                    "CONFORMANCE_PACKAGES": f"$CONFORMANCE_{key}_PACKAGES",
                                    "CONFORMANCE_RUNNER_PIP_ARGS": f"$CONFORMANCE_{key}_PIP_ARGS"}
        assert job["rules"] == [{"if": f'$CONFORMANCE_{key} == "true"'}]
        assert job["artifacts"]["when"] == "always"
        assert job["artifacts"]["paths"] == ["reports/$CONFORMANCE_NAME/"]
        assert job["artifacts"]["reports"]["junit"] == "reports/$CONFORMANCE_NAME/junit.xml"
    assert "tags" not in runner_jobs["conformance:linux-cpu"]
    assert runner_jobs["conformance:macos-arm64"]["tags"] == ["$CONFORMANCE_MACOS_TAG"]
    assert runner_jobs["conformance:cuda"]["tags"] == ["$CONFORMANCE_CUDA_TAG"]


def test_gitlab_report_job(gl):
    jobs = _gitlab_jobs(gl)
    job = jobs["conformance:report"]
    runners = sorted(name for name in jobs if name != "conformance:report")
    assert sorted(need["job"] for need in job["needs"]) == runners
    assert all(need["optional"] is True for need in job["needs"])  # a runner switched off is not needed
    assert job["stage"] == jobs[runners[0]]["stage"]
    assert job["rules"][0]["when"] == "always"  # also after a failed runner
    script = _script(job)
    assert 'conformance report merge "$@" -o reports' in script
    for runner, key in (("linux-cpu", "LINUX_CPU"), ("macos-arm64", "MACOS"), ("cuda", "CUDA")):
        assert f'"{runner}:$CONFORMANCE_{key}"' in script
        assert f'$CONFORMANCE_{key} == "true"' in job["rules"][0]["if"]
    assert "exit 1" in script.split('if [ -n "$failed" ]')[1]
    assert job["artifacts"]["when"] == "always" and job["artifacts"]["paths"] == ["reports/"]


# --- both --------------------------------------------------------------------------------------------------------


def test_command_lines_parse_with_the_real_cli():
    from conformance.cli import build_parser

    args = build_parser().parse_args(["report", "merge", "a/results.json", "b/results.json", "-o", "reports"])
    assert args.results == ["merge", "a/results.json", "b/results.json"] and args.output == "reports"
    args = build_parser().parse_args(["report", "a/results.json", "-o", "reports"])
    assert args.results == ["a/results.json"]
    run_flags = {"--backend", "--report-dir", "--known-failures", "--adapters", "--strict"}
    for path in (GITHUB, GITLAB):
        used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", path.read_text(encoding="utf-8")))
        assert run_flags <= used, (path.name, run_flags - used)
    assert run_flags - {"--strict"} <= _run_parser_flags()  # --strict: test_strict_flag_exists
    default_run_args = load_yaml(GITLAB.read_text(encoding="utf-8"))["variables"]["CONFORMANCE_RUN_ARGS"]
    assert build_parser().parse_args(["run", *shlex.split(default_run_args)]).workers == "auto"


def test_strict_flag_exists():
    if "--strict" not in _run_parser_flags():
        pytest.skip("`conformance run --strict` is not in this checkout yet; both templates pass it")
    from conformance.cli import build_parser

    assert build_parser().parse_args(["run", "--strict", "--backend", "numpy:cpu"]).strict is True


def test_readme_documents_both_templates():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Running the suite in your CI" in readme
    section = readme.split("## Running the suite in your CI", 1)[1].split("\n## ", 1)[0]
    for path in (GITHUB, GITLAB):
        assert str(path.relative_to(ROOT)) in section
