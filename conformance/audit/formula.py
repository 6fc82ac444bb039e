"""Safe arithmetic formulas for init specs: ``0.02 / sqrt(2 * (layer_id + 1))``.

Only numbers, names, ``+ - * / // ** %``, unary ``-``/``+``/``not``, parentheses, comparisons,
``and``/``or``, ``a if c else b`` (for conditional scales: ``1 if depth_init else 0``) and the functions of
:data:`FUNCTIONS` are accepted. The text is parsed with :mod:`ast` and every node is checked against a
whitelist before anything is evaluated, so a spec file can never run code: no attribute access, subscripts,
strings, lists, comprehensions, lambdas, keyword or starred arguments, or calls of anything but a bare
whitelisted function name.

Limits, so that no formula can take more than microseconds or exhaust memory or the stack (each violation is a
:class:`FormulaError` with a one-line message, raised before or during evaluation, never a hang):

* the text is at most :data:`MAX_LENGTH` characters, checked before :func:`ast.parse` (which is also guarded
  against ``MemoryError``/``RecursionError``), and its syntax tree at most :data:`MAX_DEPTH` levels deep, checked
  without recursion before evaluation (which recurses once per level);
* every value is a Python ``float``: constants, variables, and the results of ``floor``/``ceil``/comparisons,
  so there is never a big integer (``floor(10) ** floor(1e9)`` is refused at once by the exponent limit, and
  would otherwise be a float overflow, not a billion-digit integer), never a ``complex`` (``(-1) ** 0.5`` is
  refused) and never a string (``'a' * n`` cannot be written);
* every intermediate result, and every variable a formula reads, must be finite and at most
  :data:`MAX_MAGNITUDE` in absolute value; an exponent (right operand of ``**``) at most :data:`MAX_EXPONENT`;
* functions take the number of arguments in :data:`ARITY`, checked at parse time;
* a formula without variables is evaluated once by :func:`parse`, so its errors (``log(0)``, an overflow)
  surface when the spec is loaded, not when the first parameter is audited.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Functions a formula may call (each returns a float).
FUNCTIONS = {
    "sqrt": math.sqrt, "log": math.log, "exp": math.exp, "abs": abs, "min": min, "max": max,
    "floor": lambda x: float(math.floor(x)), "ceil": lambda x: float(math.ceil(x)),
}
#: (fewest, most) arguments of each function; ``None``: no upper limit (beyond :data:`MAX_LENGTH`).
ARITY: dict[str, tuple[int, int | None]] = {
    "sqrt": (1, 1), "log": (1, 2), "exp": (1, 1), "abs": (1, 1), "min": (2, None), "max": (2, None),
    "floor": (1, 1), "ceil": (1, 1),
}
#: Constants every formula may use.
CONSTANTS = {"pi": math.pi, "e": math.e, "true": 1.0, "false": 0.0}
#: Longest formula text accepted (characters); the built-in specs' longest is under 50.
MAX_LENGTH = 1000
#: Deepest syntax tree accepted (levels of :mod:`ast` nodes; ``0.02 / sqrt(2 * (layer_id + 1))`` has 7).
MAX_DEPTH = 64
#: Largest absolute value of any variable read, constant or intermediate result.
MAX_MAGNITUDE = 1e300
#: Largest absolute exponent of ``**`` (beyond it a float power only overflows or underflows).
MAX_EXPONENT = 1024.0

_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b, ast.Mod: lambda a, b: a % b,
           ast.FloorDiv: lambda a, b: a // b}
_CMPOPS = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
           ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}
_ALLOWED = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd,
            ast.Call, ast.Compare, ast.IfExp, ast.BoolOp, ast.And, ast.Or, ast.Not, *_BINOPS, *_CMPOPS)


class FormulaError(ValueError):
    """A formula that does not parse, uses something outside the whitelist, breaks a limit, or names an unknown
    variable. The message is one line."""


def shorten(text: str, limit: int = 60) -> str:
    """``repr(text)``, cut to about ``limit`` characters (messages stay one short line)."""
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


@dataclass(frozen=True)
class Formula:
    """A parsed formula; :meth:`evaluate` computes it from a mapping of variable values."""

    text: str
    tree: ast.Expression = field(repr=False, compare=False)
    names: frozenset[str] = frozenset()

    def evaluate(self, variables: Mapping[str, float]) -> float:
        missing = sorted(n for n in self.names if n not in variables and n not in CONSTANTS)
        if missing:
            known = ", ".join(sorted(variables)) or "none"
            if len(known) > 200:
                known = known[:200] + " ..."
            raise FormulaError(f"unknown variable {', '.join(missing)} in {shorten(self.text)} (known: {known}); "
                               "define it in [defaults] or [variables], or pass it in the model's config")
        try:
            return _eval(self.tree.body, variables)
        except FormulaError as exc:
            raise FormulaError(f"{shorten(self.text)} cannot be evaluated: {exc}") from None
        except (ArithmeticError, ValueError, TypeError, RecursionError) as exc:
            raise FormulaError(f"{shorten(self.text)} cannot be evaluated: {type(exc).__name__}: {exc}; check the "
                               "values it is given") from None

    def __str__(self) -> str:
        return self.text


def parse(text: str | float | int) -> Formula:
    """Parse ``text`` (a number is accepted as is); raise :class:`FormulaError` naming the problem."""
    if isinstance(text, bool):
        text = "1" if text else "0"
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:
            raise FormulaError(f"the number {text} is too large (limit {MAX_MAGNITUDE:g}); give a smaller one") \
                from None
        if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise FormulaError(f"the number {value} is not finite or larger than {MAX_MAGNITUDE:g}; "
                               "give a finite number")
        text = repr(value)
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(f"a formula must be a number or a non-empty string, got {_show(text)}; write a number "
                           "or a quoted formula")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula {shorten(text)} is longer than {MAX_LENGTH} characters; "
                           "split it into [variables]")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        column = f" at column {exc.offset}" if exc.offset else ""
        raise FormulaError(f"syntax error in formula {shorten(text)}{column}: {exc.msg}; fix the formula "
                           "(Python expression syntax)") from None
    except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes; nesting the parser cannot hold
        raise FormulaError(f"formula {shorten(text)} cannot be parsed ({type(exc).__name__}: "
                           f"{str(exc) or 'nested too deeply'}); simplify it") from None
    if _depth(tree) > MAX_DEPTH:
        raise FormulaError(f"formula {shorten(text)} is nested more than {MAX_DEPTH} levels deep; "
                           "simplify it or split it into [variables]")
    names = set()
    for node in ast.walk(tree):
        _check(node, text)
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
            names.add(node.id)
    formula = Formula(text.strip(), tree, frozenset(names))
    if not names - set(CONSTANTS):
        formula.evaluate({})  # a constant: its errors surface now
    return formula


def _show(value) -> str:
    """A value for a message: its repr, cut to about 60 characters."""
    if isinstance(value, str):
        return shorten(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + f"... ({type(value).__name__})"


def _depth(tree: ast.AST) -> int:
    """Depth of ``tree``, without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d <= MAX_DEPTH:  # deeper is refused anyway: stop counting
            stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _check(node: ast.AST, text: str) -> None:
    if not isinstance(node, _ALLOWED):
        raise FormulaError(f"{type(node).__name__} is not allowed in formula {shorten(text)}; use only numbers, "
                           "names, + - * / // ** %, comparisons, and/or/not, a if c else b and "
                           f"{'/'.join(FUNCTIONS)}")
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, (int, float))):
        raise FormulaError(f"only numeric constants are allowed in formula {shorten(text)}, got "
                           f"{_show(node.value)}; write numbers and variable names only")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise FormulaError(f"unknown function in formula {shorten(text)}; allowed: "
                               f"{', '.join(sorted(FUNCTIONS))}, positional arguments only")
        low, high = ARITY[node.func.id]
        n = len(node.args)
        if n < low or (high is not None and n > high):
            want = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
            raise FormulaError(f"{node.func.id}() takes {want} argument(s), got {n}, in formula {shorten(text)}; "
                               "fix the call")


def _num(value, what: str) -> float:
    """``value`` as a float within the limits, or :class:`FormulaError` naming ``what``."""
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)):
        raise FormulaError(f"{what} is {_show(value)}, not a number; formulas compute with numbers only")
    try:
        value = float(value)
    except OverflowError:
        raise FormulaError(f"{what} is larger than {MAX_MAGNITUDE:g}; keep every value within "
                           f"+-{MAX_MAGNITUDE:g}") from None
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise FormulaError(f"{what} is {value:g}, not finite or beyond the limit {MAX_MAGNITUDE:g}; keep every "
                           f"value finite and within +-{MAX_MAGNITUDE:g}")
    return value


def _where(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - only for a message
        text = type(node).__name__
    return shorten(text, 40)


def _eval(node: ast.AST, env: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return _num(node.value, f"the constant {_where(node)}")
    if isinstance(node, ast.Name):
        value = env[node.id] if node.id in env else CONSTANTS[node.id]
        return _num(value, f"variable {node.id}")
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT:
                raise FormulaError(f"the exponent in {_where(node)} is {right:g}, beyond the limit "
                                   f"{MAX_EXPONENT:g}; keep exponents within +-{MAX_EXPONENT:g}")
            if left < 0 and right != math.floor(right):
                raise FormulaError(f"{_where(node)}: a negative number to a fractional power is not real; use "
                                   "abs() or a whole exponent")
        return _num(_BINOPS[type(node.op)](left, right), f"the result of {_where(node)}")
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else float(not v) if isinstance(node.op, ast.Not) else +v
    if isinstance(node, ast.Call):
        args = [_eval(a, env) for a in node.args]
        return _num(FUNCTIONS[node.func.id](*args), f"the result of {_where(node)}")
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, env)
            if not _CMPOPS[type(op)](left, right):
                return 0.0
            left = right
        return 1.0
    if isinstance(node, ast.IfExp):
        return _eval(node.body, env) if _eval(node.test, env) else _eval(node.orelse, env)
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, env) for v in node.values]
        return float(all(values)) if isinstance(node.op, ast.And) else float(any(values))
    raise FormulaError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check
