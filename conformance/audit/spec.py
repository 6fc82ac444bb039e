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

Every error names the file, the line and the problem (:class:`SpecError`).
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .formula import Formula, FormulaError, parse

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
             **params) -> Rule:
        """Validate and build a rule; ``params`` are formulas (strings or numbers)."""
        where = _where(origin, line, index)
        if not isinstance(pattern, str) or not pattern:
            raise SpecError(f"{where}: 'pattern' must be a non-empty string")
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as exc:
                raise SpecError(f"{where}: bad regular expression {pattern[3:]!r}: {exc}") from None
        if dist not in DISTRIBUTIONS:
            raise SpecError(f"{where}: unknown distribution {dist!r}; known: {', '.join(DISTRIBUTIONS)}")
        required, optional_keys = DISTRIBUTIONS[dist]
        unknown = sorted(set(params) - set(required) - set(optional_keys))
        if unknown:
            raise SpecError(f"{where}: {dist} takes no parameter {', '.join(unknown)} "
                            f"(it takes {', '.join(required + optional_keys) or 'nothing'})")
        missing = [k for k in required if k not in params]
        if missing:
            raise SpecError(f"{where}: {dist} needs {', '.join(missing)}")
        if dist == "trunc_normal" and "cutoff" in params and ({"a", "b"} & set(params)):
            raise SpecError(f"{where}: trunc_normal takes either absolute bounds a, b or a relative cutoff, not both")
        if dist == "uniform" and not ("bound" in params) ^ ({"a", "b"} <= set(params)):
            raise SpecError(f"{where}: uniform needs either 'bound' or both 'a' and 'b'")
        parsed = {}
        for key, text in params.items():
            try:
                parsed[key] = parse(text)
            except FormulaError as exc:
                raise SpecError(f"{where}: {key}: {exc}") from None
        modules = (module,) if isinstance(module, str) else tuple(module)
        return cls(pattern, dist, parsed, modules, bool(optional), source, index, line, origin)

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
                raise SpecError(f"{name}: variable {key}: {exc}") from None
        return cls(name, built, variables=parsed, defaults=dict(defaults or {}), **kwargs)

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
        return int(m.group(1)) if m else None

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
                raise SpecError(f"{where}: variable {key}: {exc}") from None
        return env


# -- TOML --------------------------------------------------------------------------------------------------------

def _rule_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), 1) if re.match(r"\s*\[\[\s*rule\s*\]\]", line)]


def _key_lines(text: str, section: str) -> dict[str, int]:
    out, inside = {}, False
    for i, line in enumerate(text.splitlines(), 1):
        head = re.match(r"\s*\[\s*([A-Za-z_.]+)\s*\]\s*$", line)
        if head:
            inside = head.group(1) == section
            continue
        if re.match(r"\s*\[\[", line):
            inside = False
        m = re.match(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*=", line)
        if inside and m:
            out[m.group(1)] = i
    return out


def loads(text: str, origin: str = "<string>") -> InitSpec:
    """Parse a TOML spec; errors name ``origin`` and the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{origin}: TOML syntax error: {exc}") from None
    allowed_top = {"spec", "defaults", "variables", "rule", "tie", "ignore", "layer_regex"}
    unknown = sorted(set(data) - allowed_top)
    if unknown:
        raise SpecError(f"{origin}: unknown top-level key(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(allowed_top))}")
    meta = data.get("spec", {})
    name = meta.get("name") or Path(origin).stem
    lines = _rule_lines(text)
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise SpecError(f"{origin}: a spec needs at least one [[rule]]")
    rules = []
    for i, raw in enumerate(raw_rules, 1):
        line = lines[i - 1] if i - 1 < len(lines) else None
        raw = dict(raw)
        where = _where(origin, line, i)
        for key in ("pattern", "dist"):
            if key not in raw:
                raise SpecError(f"{where}: missing '{key}'")
        params = {k: v for k, v in raw.items() if k not in RULE_KEYS}
        rules.append(Rule.make(raw["pattern"], raw["dist"], module=raw.get("module", ()),
                               optional=raw.get("optional", False), source=raw.get("source", ""),
                               index=i, line=line, origin=origin, **params))
    var_lines = _key_lines(text, "variables")
    variables = {}
    for key, value in data.get("variables", {}).items():
        try:
            variables[key] = parse(value)
        except FormulaError as exc:
            raise SpecError(f"{origin}:{var_lines.get(key, '?')}: variable {key}: {exc}") from None
    defaults = {}
    def_lines = _key_lines(text, "defaults")
    for key, value in data.get("defaults", {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{origin}:{def_lines.get(key, '?')}: default {key} must be a number, got {value!r}")
        defaults[key] = float(value)
    tied = []
    for t in data.get("tie", []):
        names = t.get("names") if isinstance(t, dict) else None
        if not isinstance(names, list) or len(names) < 2:
            raise SpecError(f"{origin}: every [[tie]] needs names = [at least two parameter names]")
        tied.append(tuple(names))
    return InitSpec(name=name, rules=rules, description=meta.get("description", ""),
                    sources=list(meta.get("sources", [])), defaults=defaults, variables=variables, tied=tied,
                    ignore=list(data.get("ignore", [])), layer_regex=data.get("layer_regex", LAYER_REGEX),
                    origin=origin, variable_lines=var_lines)


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
        if not path.exists():
            raise SpecError(f"spec file {text} does not exist")
        return loads(path.read_text(), origin=str(path))
    resource = resources.files(__package__).joinpath("specs", f"{text}.toml")
    if not resource.is_file():
        raise SpecError(f"unknown spec {text!r}: not a file, and not a built-in spec "
                        f"(built-in: {', '.join(builtin_names())})")
    return loads(resource.read_text(), origin=f"{text}.toml")
