"""Init specs: which distribution every parameter of a model must follow, as rules users write by hand.

A spec is an ordered list of :class:`Rule` objects. A rule maps a parameter-name pattern (glob, or a
regular expression after ``re:``; optionally restricted to module types) to a distribution whose
parameters are :mod:`formulas <conformance.audit.formula>` of

* per parameter: ``fan_in``, ``fan_out`` (of the owning module's weight, canonical ``(out, in, *kernel)``
  layout; a bias gets its module's weight fans), ``layer_id`` (the first integer component of the name,
  ``layers.3.`` -> 3; see ``layer_regex``), ``numel``, ``ndim``;
* the model's config values (numbers and booleans, from the model's ``config`` and the factory's keyword
  arguments), the spec's ``[defaults]`` (used when the config lacks a name) and its ``[variables]``
  (formulas evaluated in order, each seeing everything before it).

The first rule that matches a parameter applies. Distributions (:data:`DISTRIBUTIONS`):

=================  ===========================================================================
``normal``         ``std`` (required), ``mean`` (0)
``trunc_normal``   ``std``, ``mean`` (0) and either absolute bounds ``a``, ``b`` (default -2, 2, as
                   ``torch.nn.init.trunc_normal_``) or ``cutoff``: bounds at ``mean -+ cutoff * std``
``uniform``        ``a``, ``b``, or ``bound``: U(-bound, bound)
``constant``       ``value``; ``zeros`` and ``ones`` take nothing
=================  ===========================================================================

TOML format (one file per spec; see the built-in ones under ``conformance/audit/specs/``)::

    [spec]
    name = "gpt2"
    description = "..."
    sources = ["karpathy/nanoGPT@3adf61e model.py: GPT._init_weights, c_proj loop"]

    [defaults]                      # used when the model's config lacks the name
    initializer_range = 0.02

    [variables]                     # formulas, in order
    n_layers = "n_layer"

    [[rule]]
    pattern = "*.c_proj.weight"     # glob over the full name; "re:..." for a regular expression
    dist = "normal"
    std = "initializer_range / sqrt(2 * n_layers)"
    source = "nanoGPT model.py L143-145"
    # module = ["Linear"]           # optional: only parameters of these module classes
    # optional = true               # a rule that may match nothing

    [[tie]]                         # parameters that must share storage when both exist
    names = ["transformer.wte.weight", "lm_head.weight"]

    ignore = ["*.attn.bias"]        # top-level: names (parameters or buffers) the audit skips

Every error is a one-line :class:`SpecError` naming the file, the line (of the offending key where it can be
found, else of its table or rule) and the problem, then what to do: ``FILE:LINE: what is wrong; what to do``.
Every field's type is checked (``spec = 5``, ``dist = ["normal"]``, ``ignore = 3`` ...); formulas obey the limits
of :mod:`conformance.audit.formula`. Before the TOML parser runs, a text is refused when it is longer than
:data:`MAX_SPEC_CHARS`, nests arrays or inline tables deeper than :data:`MAX_NESTING`, or has a line with more than
:data:`MAX_DOTS` dots outside strings (a dotted key of thousands of parts costs Python's TOML parser quadratic time),
so no file can hang the loader or exhaust its stack. Patterns and regular expressions (``re:``, ``layer_regex``)
are at most :data:`MAX_PATTERN` characters and must compile; the time a regular expression takes to match is not
bounded (Python's ``re`` backtracks: avoid nested repetition such as ``(a+)+`` or ``(.|.)*``).
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .formula import Formula, FormulaError, parse, shorten

#: Distributions a rule may name, with their required and optional parameters.
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "normal": (("std",), ("mean",)),
    "trunc_normal": (("std",), ("mean", "a", "b", "cutoff")),
    "uniform": ((), ("a", "b", "bound")),
    "constant": (("value",), ()),
    "zeros": ((), ()),
    "ones": ((), ()),
}
#: Keys of a rule that are not distribution parameters.
RULE_KEYS = ("pattern", "dist", "module", "optional", "source", "note")
#: Default regular expression whose first group is a parameter's layer id.
LAYER_REGEX = r"(?:^|\.)(\d+)(?:\.|$)"
#: Variables the audit defines per parameter.
PER_PARAMETER = ("fan_in", "fan_out", "layer_id", "numel", "ndim")
#: Longest spec accepted (characters; the built-in ones are under 4,000; loading the longest takes about a second).
MAX_SPEC_CHARS = 1 << 18
#: Deepest nesting of arrays and inline tables accepted (the format itself needs 1).
MAX_NESTING = 32
#: Most dots outside strings and comments on one line (the format needs a few: numbers, a dotted key).
MAX_DOTS = 16
#: Longest pattern or regular expression accepted (characters).
MAX_PATTERN = 1000
#: Keys of the ``[spec]`` table and of a ``[[tie]]``.
SPEC_KEYS = ("name", "description", "sources", "kind", "code")
#: What a spec describes: what a library's code does, or what the library says it intends (docstring, paper,
#: config field). An ``intent`` spec names its ``code`` counterpart; a model that passes the code spec and fails
#: the intent spec is a finding about the library.
SPEC_KINDS = ("code", "intent")
TIE_KEYS = ("names",)


class SpecError(ValueError):
    """A spec that cannot be used: the message names the file, line or rule, and the problem."""


@dataclass(frozen=True)
class Rule:
    """One rule: ``pattern`` -> ``dist`` with formula parameters. Build with :meth:`make` from Python."""

    pattern: str
    dist: str
    params: Mapping[str, Formula] = field(default_factory=dict)
    module: tuple[str, ...] = ()
    optional: bool = False
    source: str = ""
    index: int = 0
    line: int | None = None
    origin: str = "<python>"

    @classmethod
    def make(cls, pattern: str, dist: str, *, module: Sequence[str] | str = (), optional: bool = False,
             source: str = "", index: int = 0, line: int | None = None, origin: str = "<python>",
             lines: Mapping[str, int] | None = None, **params) -> Rule:
        """Validate and build a rule; ``params`` are formulas (strings or numbers). ``lines``: the line of each key
        (TOML), named by errors about that key; other errors name ``line``, the rule's own."""
        where = _where(origin, line, index)

        def at(key: str) -> str:
            return _where(origin, (lines or {}).get(key, line), index)

        if not isinstance(pattern, str) or not pattern:
            raise SpecError(f"{at('pattern')}: 'pattern' must be a non-empty string, got {_show(pattern)}; "
                            "give a glob over the parameter name, or re:REGEX")
        _check_pattern(pattern, f"{at('pattern')}: 'pattern'")
        if not isinstance(dist, str):
            raise SpecError(f"{at('dist')}: 'dist' must be a string, got {_show(dist)}; "
                            f"give one of {', '.join(DISTRIBUTIONS)}")
        if dist not in DISTRIBUTIONS:
            raise SpecError(f"{where}: unknown distribution {shorten(dist)}; known: {', '.join(DISTRIBUTIONS)}")
        if isinstance(module, str):
            module = (module,)
        if not isinstance(module, (list, tuple)) or not all(isinstance(m, str) and m for m in module):
            raise SpecError(f"{at('module')}: 'module' must be a module class name or a list of them, "
                            f"got {_show(module)}; e.g. module = [\"Linear\"]")
        if not isinstance(optional, bool):
            raise SpecError(f"{at('optional')}: 'optional' must be true or false, got {_show(optional)}; write "
                            "optional = true (unquoted)")
        if not isinstance(source, str):
            raise SpecError(f"{at('source')}: 'source' must be a string, got {_show(source)}; "
                            "quote where the rule comes from")
        required, optional_keys = DISTRIBUTIONS[dist]
        unknown = sorted(set(params) - set(required) - set(optional_keys))
        if unknown:
            raise SpecError(f"{at(unknown[0])}: {dist} takes no parameter {', '.join(map(_name, unknown))} "
                            f"(it takes {', '.join(required + optional_keys) or 'nothing'}); remove it or fix its "
                            "name (a key after a [[rule]] belongs to that rule)")
        missing = [k for k in required if k not in params]
        if missing:
            raise SpecError(f"{where}: {dist} needs {', '.join(missing)}; add it to the rule")
        if dist == "trunc_normal" and "cutoff" in params and ({"a", "b"} & set(params)):
            raise SpecError(f"{where}: trunc_normal takes either absolute bounds a, b or a relative cutoff, not "
                            "both; remove one")
        if dist == "uniform" and not ("bound" in params) ^ ({"a", "b"} <= set(params)):
            raise SpecError(f"{where}: uniform needs either 'bound' or both 'a' and 'b'; give one of them")
        parsed = {}
        for key, text in params.items():
            try:
                parsed[key] = parse(text)
            except FormulaError as exc:
                raise SpecError(f"{at(key)}: {key}: {exc}") from None
        return cls(pattern, dist, parsed, tuple(module), optional, source, index, line, origin)

    @property
    def where(self) -> str:
        """``file:line (rule #i 'pattern')``, for messages."""
        return f"{_where(self.origin, self.line, self.index)} {self.pattern!r}"

    def matches(self, name: str, module_type: str | None = None) -> bool:
        if self.module and module_type not in self.module:
            return False
        if self.pattern.startswith("re:"):
            return re.search(self.pattern[3:], name) is not None
        return fnmatch.fnmatchcase(name, self.pattern)

    def describe(self) -> str:
        """``normal(mean=0, std=0.02 / sqrt(2 * n_layers))``."""
        if not self.params:
            return self.dist
        return f"{self.dist}(" + ", ".join(f"{k}={v}" for k, v in self.params.items()) + ")"

    def evaluate(self, env: Mapping[str, float]) -> dict[str, float]:
        """Every parameter's value in ``env``; a formula error becomes a :class:`SpecError` naming the rule."""
        out = {}
        for key, formula in self.params.items():
            try:
                out[key] = formula.evaluate(env)
            except FormulaError as exc:
                raise SpecError(f"{self.where}: {key}: {exc}") from None
        return out


def _where(origin: str, line: int | None, index: int) -> str:
    return f"{origin}:{line} (rule #{index})" if line else f"{origin} (rule #{index})"


def _at(origin: str, line: int | None) -> str:
    return f"{origin}:{line}" if line else origin


def _name(key) -> str:
    """A key for a message: as is when it is a plain name, else quoted (a TOML key may hold any character)."""
    return key if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,60}", key) else shorten(str(key))


def _show(value) -> str:
    """A TOML value for a message: its type and repr, cut short."""
    kind = {str: "string", bool: "boolean", int: "integer", float: "float", list: "array", dict: "table"}.get(
        type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:60] + '...'}"


def _check_pattern(pattern: str, what: str, *, regex: bool = False, groups: int = 0) -> None:
    """A glob or ``re:REGEX`` (``regex``: always a regular expression) that is short enough and compiles."""
    if len(pattern) > MAX_PATTERN:
        raise SpecError(f"{what} is longer than {MAX_PATTERN} characters; shorten it")
    if not (regex or pattern.startswith("re:")):
        return
    expr = pattern if regex else pattern[3:]
    try:
        compiled = re.compile(expr)
    except (re.error, RecursionError, OverflowError, MemoryError) as exc:
        raise SpecError(f"{what}: bad regular expression {shorten(expr)}: {str(exc) or type(exc).__name__}; "
                        "fix it (Python re syntax)") from None
    if compiled.groups < groups:
        raise SpecError(f"{what}: regular expression {shorten(expr)} has no group; put one, like (\\d+), "
                        "around the layer number")


@dataclass
class InitSpec:
    """A named, ordered list of rules plus the variables their formulas may use."""

    name: str
    rules: list[Rule]
    description: str = ""
    sources: list[str] = field(default_factory=list)
    defaults: dict[str, float] = field(default_factory=dict)
    variables: dict[str, Formula] = field(default_factory=dict)
    tied: list[tuple[str, ...]] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    layer_regex: str = LAYER_REGEX
    origin: str = "<python>"
    variable_lines: dict[str, int] = field(default_factory=dict)
    kind: str = "code"  # "code" | "intent" (see SPEC_KINDS)
    code: str | None = None  # an intent spec: the name of its code spec

    @classmethod
    def make(cls, name: str, rules: Sequence[Rule | Mapping], *, variables: Mapping[str, str | float] | None = None,
             defaults: Mapping[str, float] | None = None, **kwargs) -> InitSpec:
        """Python API: rules as :class:`Rule` or dicts with the TOML keys."""
        built = []
        for i, r in enumerate(rules, 1):
            if isinstance(r, Rule):
                built.append(r)
            else:
                r = dict(r)
                built.append(Rule.make(r.pop("pattern", ""), r.pop("dist", ""), index=i, **r))
        parsed = {}
        for key, text in (variables or {}).items():
            try:
                parsed[key] = parse(text)
            except FormulaError as exc:
                raise SpecError(f"{name}: variable {_name(key)}: {exc}") from None
        checked = {}
        for key, value in (defaults or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(f"{name}: default {_name(key)} must be a number, got {_show(value)}; give a number")
            try:
                checked[key] = parse(value).evaluate({})
            except FormulaError as exc:
                raise SpecError(f"{name}: default {_name(key)}: {exc}") from None
        return cls(name, built, variables=parsed, defaults=checked, **kwargs)

    def rule_for(self, name: str, module_type: str | None = None) -> Rule | None:
        """The first rule matching ``name`` (and its module type), or ``None``."""
        for rule in self.rules:
            if rule.matches(name, module_type):
                return rule
        return None

    def ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) if not p.startswith("re:") else re.search(p[3:], name)
                   for p in self.ignore)

    def skipped(self, env: Mapping[str, float]) -> set[str]:
        """Variables not in ``env`` because a per-parameter value they need is missing."""
        return {k for k in self.variables if k not in env}

    def layer_id(self, name: str) -> int | None:
        m = re.search(self.layer_regex, name)
        if not m or m.group(1) is None:
            return None
        try:
            return int(m.group(1))
        except ValueError:
            raise SpecError(f"{self.origin}: layer_regex {shorten(self.layer_regex)} matched "
                            f"{shorten(m.group(1))} in {name!r}, not a layer number; make its first group "
                            "match digits only, like (\\d+)") from None

    def environment(self, config: Mapping[str, float], per_parameter: Mapping[str, float] | None = None
                    ) -> dict[str, float]:
        """defaults, then config, then per-parameter values, then the spec's variables in order."""
        env: dict[str, float] = {**self.defaults, **config, **(per_parameter or {})}
        for key, formula in self.variables.items():
            try:
                env[key] = formula.evaluate(env)
            except FormulaError as exc:
                if (set(formula.names) & set(PER_PARAMETER)) - set(env) or set(formula.names) & self.skipped(env):
                    continue  # needs a per-parameter value this parameter lacks (layer_id of an embedding)
                line = self.variable_lines.get(key)
                where = f"{self.origin}:{line}" if line else self.origin
                raise SpecError(f"{where}: variable {_name(key)}: {exc}") from None
        return env


# -- TOML --------------------------------------------------------------------------------------------------------

_SPECIAL = re.compile("\"\"\"|'''|[\"'#\\[\\]{}\\n]")
_STRING_END = {'"': re.compile(r'\\.|"|\n', re.S), "'": re.compile(r"'|\n"),
               '"""': re.compile(r'\\.|"""', re.S), "'''": re.compile("'''")}
_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]\n]*?)\s*\]")
_KEY = re.compile(r"""\s*("[^"\n]*"|'[^'\n]*'|[A-Za-z0-9_-]+)\s*[.=]""")


class _Lines:
    """Where each table and key of a TOML text is: a light scan that skips strings, comments, arrays and inline
    tables, and refuses (:class:`SpecError`) texts nested deeper than :data:`MAX_NESTING` or with a line of more
    than :data:`MAX_DOTS` dots outside strings, before the TOML parser sees them."""

    def __init__(self, text: str, origin: str):
        self.tables: dict[tuple[str, int | None], int] = {}
        self.keys: dict[tuple[str, int | None, str], int] = {}
        structural, skeleton = self._scan(text, origin)
        for no, dots in enumerate(part.count(".") for part in "".join(skeleton).split("\n")):
            if dots > MAX_DOTS:
                raise SpecError(f"{origin}:{no + 1}: {dots} dots outside strings on one line (the limit is "
                                f"{MAX_DOTS}); a spec needs no deeply dotted keys: quote names, write one key a line")
        raw = text.split("\n")
        counts: dict[str, int] = {}
        table: tuple[str, int | None] = ("", None)
        for no in structural:
            line = raw[no - 1]
            head = _HEADER.match(line)
            if head:
                name = ".".join(part.strip().strip("\"'") for part in head.group(2).split("."))
                if head.group(1) == "[[":
                    counts[name] = counts.get(name, 0) + 1
                    table = (name, counts[name])
                else:
                    table = (name, None)
                self.tables.setdefault(table, no)
                continue
            key = _KEY.match(line)
            if key:
                self.keys.setdefault((*table, key.group(1).strip("\"'")), no)

    @staticmethod
    def _scan(text: str, origin: str) -> tuple[list[int], list[str]]:
        """Numbers of the lines that start outside strings, arrays and inline tables; the text without strings
        and comments, in pieces (same line breaks)."""
        structural, skeleton = [1], []
        i, n, line, depth = 0, len(text), 1, 0
        while True:
            m = _SPECIAL.search(text, i)
            if m is None:
                skeleton.append(text[i:])
                return structural, skeleton
            j, c = m.start(), m.group()
            skeleton.append(text[i:j])
            if c == "\n":
                line += 1
                if depth == 0:
                    structural.append(line)
                skeleton.append("\n")
                i = j + 1
            elif c == "#":
                end = text.find("\n", j)
                i = n if end < 0 else end
            elif c in ('"', "'", '"""', "'''"):
                k, end = j + len(c), n
                while True:
                    t = _STRING_END[c].search(text, k)
                    if t is None:
                        break
                    if t.group().startswith("\\") and c[0] == '"':
                        k = t.end()
                        continue
                    end = t.start() if t.group() == "\n" else t.end()
                    break
                if len(c) == 3:  # up to two quotes may precede the closing delimiter
                    extra = 0
                    while end < n and text[end] == c[0] and extra < 2:
                        end, extra = end + 1, extra + 1
                newlines = text.count("\n", j, end)
                line += newlines
                skeleton.append('""' + "\n" * newlines)
                i = end
            elif c == "[" and depth == 0 and not text[text.rfind("\n", 0, j) + 1:j].strip():
                close = text.find("]", j)  # a table header: [name] or [[name]]
                close = n if close < 0 else close + (2 if text.startswith("]]", close) else 1)
                skeleton.append(text[j:close])
                i = close
            elif c in "[{":
                depth += 1
                if depth > MAX_NESTING:
                    raise SpecError(f"{origin}:{line}: arrays or inline tables nested more than {MAX_NESTING} "
                                    "deep; a spec needs one level (lists of strings)")
                i = j + 1
            else:  # ] }
                depth = max(depth - 1, 0)
                i = j + 1

    def key(self, table: str, index: int | None, key: str) -> int | None:
        """Line of ``key`` in ``[table]`` (``index`` None) or the index-th ``[[table]]`` (from 1); failing that,
        of the table's header."""
        return (self.keys.get((table, index, key)) or self.tables.get((f"{table}.{key}", None))
                or self.tables.get((table, index)))

    def top(self, key: str) -> int | None:
        """Line of top-level ``key``: ``key = ...``, ``[key]``, ``[[key]]`` or ``[key.sub]``."""
        found = [v for (t, _), v in self.tables.items() if t == key or t.startswith(key + ".")]
        if ("", None, key) in self.keys:
            found.append(self.keys[("", None, key)])
        return min(found, default=None)


def _rule_lines(text: str) -> list[int]:
    """Line of each ``[[rule]]`` header, in order."""
    tables = _Lines(text, "<spec>").tables
    return [tables[("rule", i)] for i in range(1, len(tables) + 1) if ("rule", i) in tables]


def _key_lines(text: str, section: str) -> dict[str, int]:
    """Line of each key of ``[section]``."""
    return {k: v for (t, i, k), v in _Lines(text, "<spec>").keys.items() if t == section and i is None}


def _decode_error(exc: tomllib.TOMLDecodeError, origin: str) -> SpecError:
    msg = str(exc).replace("\n", " ")
    m = re.search(r"\(at line (\d+), column \d+\)", msg)
    return SpecError(f"{_at(origin, m and int(m.group(1)))}: TOML syntax error: {msg}; fix the TOML (toml.io)")


def loads(text: str, origin: str = "<string>") -> InitSpec:
    """Parse a TOML spec; errors name ``origin`` and the line (see the module docs for the checks and limits)."""
    if not isinstance(text, str):
        raise SpecError(f"{origin}: a spec is TOML text, got {type(text).__name__}; pass a str")
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(f"{origin}: {len(text)} characters, more than the limit of {MAX_SPEC_CHARS} for a spec; "
                        "is this the right file?")
    lines = _Lines(text, origin)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _decode_error(exc, origin) from None
    except (RecursionError, MemoryError) as exc:
        raise SpecError(f"{origin}: the TOML parser gave up ({type(exc).__name__}): nested too deeply; "
                        "a spec needs only tables, [[rule]] and lists of strings") from None

    def top(key: str) -> str:
        return _at(origin, lines.top(key))

    allowed_top = ("spec", "defaults", "variables", "rule", "tie", "ignore", "layer_regex")
    for key in data:
        if key not in allowed_top:
            raise SpecError(f"{top(key)}: unknown top-level key {shorten(key)}; known: {', '.join(allowed_top)} "
                            "(a key after a [table] header belongs to that table)")

    # [spec]
    meta = data.get("spec", {})
    if not isinstance(meta, dict):
        raise SpecError(f"{top('spec')}: 'spec' must be a table, got {_show(meta)}; write a [spec] section with "
                        "name, description and sources")
    for key, value in meta.items():
        at = _at(origin, lines.key("spec", None, key))
        if key not in SPEC_KEYS:
            raise SpecError(f"{at}: unknown key {shorten(key)} in [spec]; known: {', '.join(SPEC_KEYS)} (a key after "
                            "[spec] belongs to it: put top-level keys before the first [table])")
        if key == "sources":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SpecError(f"{at}: [spec] sources must be a list of strings, got {_show(value)}; write "
                                "sources = [\"repo@commit path: what\"]")
        elif not isinstance(value, str) or (key == "name" and not value.strip()):
            raise SpecError(f"{at}: [spec] {key} must be a{' non-empty' if key == 'name' else ''} string, "
                            f"got {_show(value)}; quote it")
    name = meta.get("name") or Path(origin).stem
    kind = meta.get("kind", "code")
    if kind not in SPEC_KINDS:
        raise SpecError(f"{_at(origin, lines.key('spec', None, 'kind'))}: [spec] kind must be one of "
                        f"{', '.join(SPEC_KINDS)}, got {_show(kind)}; 'code' describes what the code does, 'intent' "
                        "what its docstring, paper or config says")
    if kind == "intent" and not meta.get("code"):
        raise SpecError(f"{_at(origin, lines.key('spec', None, 'kind'))}: an intent spec names the spec of the "
                        "code it is the intent of: add code = \"NAME\" to [spec]")
    if kind == "code" and "code" in meta:
        raise SpecError(f"{_at(origin, lines.key('spec', None, 'code'))}: [spec] code names the code spec of an "
                        "intent spec; add kind = \"intent\" or remove it")

    # [[rule]]
    raw_rules = data.get("rule")
    if raw_rules is None or (isinstance(raw_rules, list) and not raw_rules):
        raise SpecError(f"{origin}: a spec needs at least one [[rule]]; add [[rule]] tables with pattern and dist")
    if not isinstance(raw_rules, list):
        raise SpecError(f"{top('rule')}: 'rule' must be an array of tables, got {_show(raw_rules)}; write "
                        "[[rule]] sections with pattern and dist")
    rules = []
    for i, raw in enumerate(raw_rules, 1):
        line = lines.tables.get(("rule", i))
        where = _where(origin, line or lines.top("rule"), i)
        if not isinstance(raw, dict):
            raise SpecError(f"{where}: every rule must be a table, got {_show(raw)}; write [[rule]] sections with "
                            "pattern and dist")
        key_lines = {k: v for k in raw if (v := lines.keys.get(("rule", i, k)))}
        for key in ("pattern", "dist"):
            if key not in raw:
                raise SpecError(f"{where}: missing '{key}'; every [[rule]] needs pattern and dist")
        if "note" in raw and not isinstance(raw["note"], str):
            raise SpecError(f"{_where(origin, key_lines.get('note', line), i)}: 'note' must be a string, "
                            f"got {_show(raw['note'])}; quote it")
        params = {k: v for k, v in raw.items() if k not in RULE_KEYS}
        rules.append(Rule.make(raw["pattern"], raw["dist"], module=raw.get("module", ()),
                               optional=raw.get("optional", False), source=raw.get("source", ""),
                               index=i, line=line, origin=origin, lines=key_lines, **params))

    # [variables]
    raw_vars = data.get("variables", {})
    if not isinstance(raw_vars, dict):
        raise SpecError(f"{top('variables')}: 'variables' must be a table, got {_show(raw_vars)}; write a "
                        "[variables] section of name = \"formula\" lines")
    var_lines = {k: v for k in raw_vars if (v := lines.key("variables", None, k))}
    variables = {}
    for key, value in raw_vars.items():
        try:
            variables[key] = parse(value)
        except FormulaError as exc:
            raise SpecError(f"{_at(origin, var_lines.get(key))}: variable {_name(key)}: {exc}") from None

    # [defaults]
    raw_defaults = data.get("defaults", {})
    if not isinstance(raw_defaults, dict):
        raise SpecError(f"{top('defaults')}: 'defaults' must be a table, got {_show(raw_defaults)}; write a "
                        "[defaults] section of name = number lines")
    defaults = {}
    for key, value in raw_defaults.items():
        at = _at(origin, lines.key("defaults", None, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{at}: default {_name(key)} must be a number, got {_show(value)}; formulas go in "
                            "[variables]")
        try:
            defaults[key] = parse(value).evaluate({})
        except FormulaError as exc:
            raise SpecError(f"{at}: default {_name(key)}: {exc}") from None

    # [[tie]]
    raw_ties = data.get("tie", [])
    if not isinstance(raw_ties, list):
        raise SpecError(f"{top('tie')}: 'tie' must be an array of tables, got {_show(raw_ties)}; write [[tie]] "
                        "sections with names = [...]")
    tied = []
    for i, t in enumerate(raw_ties, 1):
        at = _at(origin, lines.tables.get(("tie", i)) or lines.top("tie"))
        if not isinstance(t, dict):
            raise SpecError(f"{at}: every tie must be a table, got {_show(t)}; write [[tie]] sections with "
                            "names = [...]")
        for key in t:
            if key not in TIE_KEYS:
                raise SpecError(f"{_at(origin, lines.key('tie', i, key))}: unknown key {shorten(key)} in [[tie]] "
                                f"#{i}; known: {', '.join(TIE_KEYS)}")
        names = t.get("names")
        if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) and n for n in names):
            raise SpecError(f"{_at(origin, lines.key('tie', i, 'names'))}: every [[tie]] needs names = [at least "
                            f"two parameter names], got {_show(names) if 'names' in t else 'no names'}; list the "
                            "names of the parameters that share storage")
        tied.append(tuple(names))

    # ignore, layer_regex
    ignore = data.get("ignore", [])
    if isinstance(ignore, str):
        ignore = [ignore]
    if not isinstance(ignore, list) or not all(isinstance(p, str) and p for p in ignore):
        raise SpecError(f"{top('ignore')}: 'ignore' must be a list of name patterns (globs or re:REGEX), "
                        f"got {_show(ignore)}; put it before the first [table]")
    for p in ignore:
        _check_pattern(p, f"{top('ignore')}: ignore pattern {shorten(p)}")
    layer_regex = data.get("layer_regex", LAYER_REGEX)
    if not isinstance(layer_regex, str) or not layer_regex:
        raise SpecError(f"{top('layer_regex')}: 'layer_regex' must be a regular expression (string), "
                        f"got {_show(layer_regex)}; put it before the first [table]")
    _check_pattern(layer_regex, f"{top('layer_regex')}: layer_regex", regex=True, groups=1)
    return InitSpec(name=name, rules=rules, description=meta.get("description", ""), kind=kind,
                    code=meta.get("code"),
                    sources=list(meta.get("sources", [])), defaults=defaults, variables=variables, tied=tied,
                    ignore=ignore, layer_regex=layer_regex, origin=origin, variable_lines=var_lines)


def builtin_names() -> list[str]:
    """Names of the specs shipped with the package."""
    return sorted(p.name.removesuffix(".toml") for p in resources.files(__package__).joinpath("specs").iterdir()
                  if p.name.endswith(".toml"))


def load(name_or_path: str | Path | InitSpec) -> InitSpec:
    """A built-in spec by name (``gpt2``) or a TOML file by path."""
    if isinstance(name_or_path, InitSpec):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or path.exists():
        return loads(_read(path), origin=str(path))
    resource = resources.files(__package__).joinpath("specs", f"{text}.toml")
    if not resource.is_file():
        raise SpecError(f"unknown spec {shorten(text)}: not a file, and not a built-in spec; give a TOML file or "
                        f"a built-in name (built-in: {', '.join(builtin_names())})")
    return loads(resource.read_text(), origin=f"{text}.toml")


def _read(path: Path) -> str:
    """The text of a spec file: a regular file of at most 4 * :data:`MAX_SPEC_CHARS` bytes, in UTF-8."""
    try:
        if not path.exists():
            raise SpecError(f"spec file {path} does not exist; give a built-in spec name or a TOML file")
        if not path.is_file():
            raise SpecError(f"{path}: not a regular file; give a TOML file")
        with path.open("rb") as f:
            data = f.read(MAX_SPEC_CHARS * 4 + 1)
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read ({exc.strerror or exc}); check the path and its permissions") \
            from None
    if len(data) > MAX_SPEC_CHARS * 4:
        raise SpecError(f"{path}: larger than {MAX_SPEC_CHARS * 4} bytes, far more than a spec; is this the right "
                        "file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SpecError(f"{path}:{line}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the spec as UTF-8") \
            from None
