"""Safe arithmetic formulas for init specs: ``0.02 / sqrt(2 * (layer_id + 1))``.

Only numbers, names, ``+ - * / ** %``, unary minus, parentheses and a few functions
(:data:`FUNCTIONS`) are accepted; the text is parsed with :mod:`ast` and every node is checked
against a whitelist before anything is evaluated, so a spec file can never run code.
Comparisons and ``a if c else b`` are allowed for conditional scales (``1 if depth_init else 0``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Functions a formula may call.
FUNCTIONS = {
    "sqrt": math.sqrt, "log": math.log, "exp": math.exp, "abs": abs, "min": min, "max": max,
    "floor": math.floor, "ceil": math.ceil,
}
#: Constants every formula may use.
CONSTANTS = {"pi": math.pi, "e": math.e, "true": 1.0, "false": 0.0}

_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b, ast.Mod: lambda a, b: a % b,
           ast.FloorDiv: lambda a, b: a // b}
_CMPOPS = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
           ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


class FormulaError(ValueError):
    """A formula that does not parse, uses something outside the whitelist, or names an unknown variable."""


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
            raise FormulaError(f"unknown variable {', '.join(missing)} in {self.text!r} (known: {known})")
        try:
            return float(_eval(self.tree.body, variables))
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise FormulaError(f"{self.text!r} cannot be evaluated: {exc}") from exc

    def __str__(self) -> str:
        return self.text


def parse(text: str | float | int) -> Formula:
    """Parse ``text`` (a number is accepted as is); raise :class:`FormulaError` naming the problem."""
    if isinstance(text, bool):
        text = "1" if text else "0"
    if isinstance(text, (int, float)):
        text = repr(float(text))
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(f"a formula must be a number or a non-empty string, got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"syntax error in formula {text!r} at column {exc.offset}: {exc.msg}") from None
    names = set()
    for node in ast.walk(tree):
        _check(node, text)
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
            names.add(node.id)
    return Formula(text.strip(), tree, frozenset(names))


def _check(node: ast.AST, text: str) -> None:
    allowed = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd,
               ast.Call, ast.Compare, ast.IfExp, ast.BoolOp, ast.And, ast.Or, ast.Not, *_BINOPS, *_CMPOPS)
    if not isinstance(node, allowed):
        raise FormulaError(f"{type(node).__name__} is not allowed in formula {text!r} "
                           "(numbers, names, + - * / ** %, comparisons and sqrt/log/exp/min/max/abs only)")
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, (int, float))):
        raise FormulaError(f"only numeric constants are allowed in formula {text!r}, got {node.value!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise FormulaError(f"unknown function in formula {text!r}; allowed: {', '.join(sorted(FUNCTIONS))}")


def _eval(node: ast.AST, env: Mapping[str, float]):
    if isinstance(node, ast.Constant):
        return float(node.value)  # floats only: 10**10**10 overflows instead of building a huge integer
    if isinstance(node, ast.Name):
        return float(env[node.id] if node.id in env else CONSTANTS[node.id])
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else (not v) if isinstance(node.op, ast.Not) else +v
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_eval(a, env) for a in node.args))
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
