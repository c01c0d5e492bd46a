"""Selection cuts on event columns, e.g. ``nn_score > 0.1 & njets >= 2`` (numpy only).

The expression is parsed with Python's ``ast`` and evaluated by walking the tree: only
column names, numbers, comparisons, ``&`` ``|`` ``~``, ``and`` ``or`` ``not``,
``+ - * /``, unary minus and parentheses are allowed. Anything else (calls, attribute
access, subscripts, strings, lambdas, ...) is refused with a ``DatasetError`` that quotes
the offending part; nothing is ever passed to ``eval``.

``&``/``|``/``~`` mean the same as ``and``/``or``/``not`` (element-wise over events) and,
as in ``pandas.DataFrame.query``, bind more loosely than comparisons: ``x > 0.1 & n >= 2``
is ``(x > 0.1) & (n >= 2)`` (plain Python would read ``x > (0.1 & n) >= 2``). A chained
comparison ``0.1 < x <= 0.9`` means ``(0.1 < x) & (x <= 0.9)``.
"""
from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass

import numpy as np

from .readers import DatasetError

#: Longest expression accepted (a cut line, not a program).
MAX_EXPRESSION_LENGTH = 1000

_COMPARE = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less,
            ast.LtE: np.less_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}
_ARITHMETIC = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
               ast.Div: np.true_divide}
_LOGICAL = {ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or}


@dataclass(frozen=True)
class Selection:
    """A parsed, checked cut: ``columns`` are the names it reads."""

    expression: str
    tree: ast.Expression
    columns: tuple[str, ...]

    def mask(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Boolean mask over events: True where the event passes. ``columns`` maps each name
        in ``self.columns`` to a 1-D array (all of the same length)."""
        missing = [c for c in self.columns if c not in columns]
        if missing:
            raise DatasetError({"selection": f"selection {self.expression!r}: no column "
                                             f"{missing[0]!r}"})
        with np.errstate(divide="ignore", invalid="ignore"):
            value = _evaluate(self.tree.body, columns, (self.expression, _loose_logic(self.expression)))
        if not _is_boolean(value):
            raise DatasetError({"selection": f"selection {self.expression!r} is not a condition "
                                             f"(use a comparison such as x > 0.5)"})
        n = len(next(iter(columns.values()))) if columns else 0
        return np.broadcast_to(np.asarray(value, bool), (n,)) if np.ndim(value) == 0 \
            else np.asarray(value, bool)


def parse_selection(expression: str, known_columns=None) -> Selection:
    """Parse and check ``expression``; ``known_columns`` (if given) are the columns that
    exist, so that a misspelt name is refused before any data is read."""
    if not isinstance(expression, str) or not expression.strip():
        raise DatasetError({"selection": "the selection is empty"})
    text = " ".join(expression.split())
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise DatasetError({"selection": f"the selection is longer than "
                                         f"{MAX_EXPRESSION_LENGTH} characters"})
    try:
        tree = ast.parse(_loose_logic(text), mode="eval")
    except (SyntaxError, tokenize.TokenError) as err:
        raise DatasetError({"selection": f"selection {text!r} is not a valid expression "
                                         f"({err.args[0]})"}) from None
    names: list[str] = []
    ctx = (text, _loose_logic(text))  # (as written, as parsed): messages quote both
    _check(tree.body, ctx, names)
    columns = tuple(dict.fromkeys(names))
    if known_columns is not None:
        known = set(known_columns)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise DatasetError({"selection": f"selection {text!r}: no column {unknown[0]!r} "
                                             f"(columns: {', '.join(sorted(known))})"})
    if not _can_be_boolean(tree.body):
        raise DatasetError({"selection": f"selection {text!r} is not a condition "
                                         f"(use a comparison such as x > 0.5)"})
    return Selection(text, tree, columns)


_WORDS = {"&": "and", "|": "or", "~": "not"}


def _loose_logic(text: str) -> str:
    """``&``, ``|``, ``~`` as the words ``and``, ``or``, ``not``: same meaning here, and the
    words have the precedence below comparisons that cut expressions are written with."""
    out = text
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    for token in reversed(tokens):  # from the end: earlier offsets stay valid
        if token.type == tokenize.OP and token.string in _WORDS:
            start, end = token.start[1], token.end[1]
            out = f"{out[:start]} {_WORDS[token.string]} {out[end:]}"
    return out.strip()


def _part(node: ast.AST, ctx: tuple) -> str:
    return ast.get_source_segment(ctx[1], node) or type(node).__name__


def _refuse(node: ast.AST, ctx: tuple, why: str):
    raise DatasetError({"selection": f"selection {ctx[0]!r}: {why} {_part(node, ctx)!r} is not "
                                     f"allowed (only column names, numbers, comparisons, "
                                     f"& | ~, and/or/not, + - * / and parentheses)"})


def _check(node: ast.AST, ctx: tuple, names: list[str]) -> None:
    """Refuse every node outside the small grammar; collect the column names."""
    if isinstance(node, ast.Name):
        names.append(node.id)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            _refuse(node, ctx, "the value")
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                _refuse(node, ctx, "the comparison")
        for child in [node.left, *node.comparators]:
            _check(child, ctx, names)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITHMETIC and type(node.op) not in _LOGICAL:
            _refuse(node, ctx, "the operation")
        _check(node.left, ctx, names)
        _check(node.right, ctx, names)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Invert, ast.Not, ast.USub, ast.UAdd)):
            _refuse(node, ctx, "the operation")
        _check(node.operand, ctx, names)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, ctx, names)
    elif isinstance(node, ast.Call):
        _refuse(node, ctx, "the call")
    elif isinstance(node, ast.Attribute):
        _refuse(node, ctx, "the attribute access")
    elif isinstance(node, ast.Subscript):
        _refuse(node, ctx, "the subscript")
    else:
        _refuse(node, ctx, "the expression")


def _can_be_boolean(node: ast.AST) -> bool:
    """Whether the top of the tree yields a condition (a comparison or logic of them)."""
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_can_be_boolean(v) for v in node.values)
    if isinstance(node, ast.BinOp) and type(node.op) in _LOGICAL:
        return _can_be_boolean(node.left) and _can_be_boolean(node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.Not)):
        return _can_be_boolean(node.operand)
    return False


def _is_boolean(value) -> bool:
    return np.asarray(value).dtype == bool


def _evaluate(node: ast.AST, columns: dict, ctx: tuple):
    if isinstance(node, ast.Name):
        return columns[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Compare):
        result, left = None, _evaluate(node.left, columns, ctx)
        for op, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, columns, ctx)
            part = _COMPARE[type(op)](left, right)
            result = part if result is None else np.logical_and(result, part)
            left = right
        return result
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, columns, ctx)
        right = _evaluate(node.right, columns, ctx)
        if type(node.op) in _LOGICAL:
            if not (_is_boolean(left) and _is_boolean(right)):
                raise DatasetError({"selection": f"selection {ctx[0]!r}: both sides of "
                                                 f"{_part(node, ctx)!r} must be conditions "
                                                 f"(put comparisons in parentheses: "
                                                 f"(a > 1) & (b < 2))"})
            return _LOGICAL[type(node.op)](left, right)
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, columns, ctx)
        if isinstance(node.op, (ast.Invert, ast.Not)):
            if not _is_boolean(operand):
                raise DatasetError({"selection": f"selection {ctx[0]!r}: {_part(node, ctx)!r} "
                                                 f"negates something that is not a condition"})
            return np.logical_not(operand)
        return np.negative(operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BoolOp):
        values = [_evaluate(v, columns, ctx) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        return result
    _refuse(node, ctx, "the expression")  # unreachable after _check
