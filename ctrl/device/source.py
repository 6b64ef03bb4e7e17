"""YAML text to plain data plus the line and column of every node, so each message can point into the file.

The data is exactly what `yaml.safe_load` gives (same composer, resolver and SafeConstructor; libyaml's
parser when present, for speed). On the side we record, per path (`("calibration", "qubits", 3, "t1_s")`),
where the value starts and where its key starts, and we refuse duplicate mapping keys, which `safe_load`
would silently resolve to the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from ctrl.errors import CtrlError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple  # a path into the data: str keys and int list indices


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, located as precisely as we can."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: str  # e.g. "calibration.qubits[3].t1_s"; "" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def path_str(path: Path_) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


@dataclass
class Marks:
    """(line, column), 1-based, of values and keys by data path."""

    values: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)

    def at(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """The mark of `path`, or of its closest recorded ancestor (a missing field points at its parent)."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def move(self, old: Path_, new: Path_) -> None:
        """Re-key every mark under `old` to `new` (used by schema upgrades that move fields)."""
        n = len(old)
        for table in (self.values, self.keys):
            for p in [p for p in table if p[:n] == tuple(old)]:
                table[tuple(new) + p[n:]] = table.pop(p)


@dataclass(frozen=True)
class Source:
    name: str
    data: object
    marks: Marks
    problems: tuple[Problem, ...]  # duplicate keys: reported, the data keeps the last value like safe_load


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(node, path, marks: Marks, constructor, name: str, problems: list, seen: set) -> None:
    marks.values.setdefault(path, _mark(node))
    if id(node) in seen:  # an alias: the same node again; its insides were walked already
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            try:
                key = constructor.construct_object(key_node, deep=True)
                hash(key)
            except Exception:  # an unhashable key: construct_document reports it properly
                continue
            if key in first:
                line, col = _mark(key_node)
                problems.append(
                    Problem(name, line, col, path_str(path + (key,)),
                            f"duplicate key '{key}' (first at line {first[key]}); YAML would keep only the last one")
                )
            else:
                first[key] = _mark(key_node)[0]
            marks.keys[path + (key,)] = _mark(key_node)
            _walk(value_node, path + (key,), marks, constructor, name, problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), marks, constructor, name, problems, seen)


MAX_YAML_NODES = 1_000_000  # a 1000-qubit device file has about 50 000; aliases count once per use


def _expanded_size(node: yaml.Node, name: str) -> int:
    """How many nodes the data would hold with every alias expanded, counted without expanding (each
    distinct node once, memoised): an alias bomb of a few lines is refused before it is constructed."""
    sizes: dict[int, int] = {}
    order, stack = [], [node]
    while stack:  # iterative post-order: deep nesting must not overflow Python's stack
        n = stack.pop()
        if id(n) in sizes:
            continue
        sizes[id(n)] = -1
        order.append(n)
        if isinstance(n, yaml.MappingNode):
            stack.extend(x for kv in n.value for x in kv)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    for n in reversed(order):
        kids = (x for kv in n.value for x in kv) if isinstance(n, yaml.MappingNode) else (
            n.value if isinstance(n, yaml.SequenceNode) else ())
        total = 1 + sum(max(sizes[id(k)], 0) for k in kids)
        if total > MAX_YAML_NODES:
            line, col = _mark(n)
            raise CtrlError(f"{name}:{line}:{col}: the data here expands to over {MAX_YAML_NODES} values "
                            f"(YAML aliases repeated inside each other?); refused")  # fmt: skip
        sizes[id(n)] = total
    return sizes[id(node)]


def parse(text: str, name: str) -> Source:
    """Parse YAML text; raise CtrlError (with line and column) if it is not YAML or is empty."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise CtrlError(f"{name}: the file is empty (expected a YAML mapping with schema_version, ...)")
            _expanded_size(node, name)
            marks = Marks()
            problems: list[Problem] = []
            _walk(node, (), marks, yaml.SafeLoader(""), name, problems, set())
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise CtrlError(f"{where}: YAML syntax error: {what}") from None
    except yaml.YAMLError as e:
        raise CtrlError(f"{name}: YAML error: {e}") from None
    except RecursionError:
        raise CtrlError(f"{name}: YAML nested too deeply") from None
    return Source(name, data, marks, tuple(problems))
