"""Read region YAML files into plain data while remembering where every value stands.

PyYAML's libyaml composer builds the node tree (fast enough for a 10,000-host region); we walk
it ourselves so that each mapping key and list item gets a file position, and so that duplicate
keys, which YAML loaders silently overwrite, become reported errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from inventories.errors import ModelError, Position

# libyaml is in the PyPI wheels; the pure-Python loader is the fallback.
_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PathKey = tuple[str | int, ...]

# Limits that keep a hostile or broken file from hanging the loader (a YAML alias bomb expands a
# few hundred bytes into billions of values). A 10,000-host region is about 150,000 values.
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_VALUES = 2_000_000
_ANCHOR = re.compile(r"&[^\s]")  # without an anchor there can be no alias


class ExpansionError(Exception):
    """A file's aliases expand past MAX_VALUES, or an alias refers to itself."""


def expanded_size(root: Any, children: Callable[[Any], list[Any]], cap: int = MAX_VALUES) -> int:
    """How many values `root` stands for with every alias expanded, counted without expanding
    (each shared node once); stops at `cap`. Raises ExpansionError past the cap or on a cycle."""
    memo: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in memo:
            continue
        kids = children(node)
        if done:
            visiting.discard(key)
            memo[key] = total = 1 + sum(memo[id(k)] for k in kids)
            if total > cap:
                raise ExpansionError(f"its aliases expand to more than {cap:,} values")
            continue
        visiting.add(key)
        stack.append((node, True))
        for kid in kids:
            if id(kid) in visiting:
                raise ExpansionError("an alias refers to the value that contains it")
            if id(kid) not in memo:
                stack.append((kid, False))
    return memo[id(root)]


def _node_children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _data_children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, list):
        return value
    return []


def _too_big(file: Path) -> str | None:
    try:
        size = file.stat().st_size
    except OSError:
        return None  # reading it reports the real problem
    if size > MAX_FILE_BYTES:
        return f"the file is {size / 2**20:.0f} MB; region files may be at most {MAX_FILE_BYTES // 2**20} MB"
    return None


class SourceMap:
    """Maps a model path (a tuple of keys and indexes) to the position it was read from."""

    def __init__(self) -> None:
        self._pos: dict[PathKey, Position] = {}

    def add(self, path: PathKey, pos: Position) -> None:
        self._pos.setdefault(path, pos)

    def adopt(self, other: SourceMap) -> None:
        """Take another file's positions; where both have a path, the first file read wins."""
        for path, pos in other._pos.items():
            self._pos.setdefault(path, pos)

    def find(self, path: PathKey) -> Position | None:
        """Position of `path`, or of its closest ancestor that was read from a file."""
        for end in range(len(path), -1, -1):
            pos = self._pos.get(path[:end])
            if pos is not None:
                return pos
        return None


def _position(file: Path, node: yaml.Node) -> Position:
    mark = node.start_mark
    return Position(file, mark.line + 1, mark.column + 1)


class _Walker:
    def __init__(self, file: Path, smap: SourceMap, errors: list[ModelError]) -> None:
        self.file = file
        self.smap = smap
        self.errors = errors
        self.constructor = yaml.SafeLoader("")  # only its scalar construction is used

    def value(self, node: yaml.Node, path: PathKey) -> Any:
        self.smap.add(path, _position(self.file, node))
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, val_node in node.value:
                key = self.value(key_node, path + ("<key>",))
                if not isinstance(key, (str, int)):
                    self._error(key_node, path, f"mapping key {key!r} is not a name",
                                "use a plain word as the key")
                    continue
                key = str(key)
                if key in out:
                    self._error(key_node, path + (key,), f"duplicate key {key!r}",
                                "each name may appear once in a mapping: remove or rename one")
                    continue
                child = path + (key,)
                self.smap.add(child, _position(self.file, key_node))
                out[key] = self.value(val_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except ValueError:  # e.g. an integer of thousands of digits (past Python's int limit)
            self._error(node, path, f"a number of {len(str(node.value)):,} characters is too long to read",
                        "quote it if it is text; numbers in a region (ports, sizes, counts) are a few digits")
            return None

    def _error(self, node: yaml.Node, path: PathKey, message: str, hint: str) -> None:
        self.errors.append(ModelError(dotted(path), message, hint, _position(self.file, node)))


def dotted(path: PathKey) -> str:
    """`('sites', 'ruijin', 'hosts', 0)` -> `sites.ruijin.hosts[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class DuplicateKey(yaml.YAMLError):
    """Raised by the fast loader; the positional reader then reports it properly."""


class _FastLoader(_Loader):  # type: ignore[misc,valid-type]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [k.value for k, _ in node.value]
        if len(keys) != len(set(keys)):
            raise DuplicateKey("duplicate key")
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


_FastLoader.add_constructor("tag:yaml.org,2002:map", _FastLoader.construct_mapping)


def read_yaml_fast(file: Path, smap: SourceMap, errors: list[ModelError]) -> Any:
    """Parse without positions (about twice as fast). Any problem is only flagged: the caller
    then re-reads everything with `read_yaml` to report it with file, line and column."""
    def doubt() -> None:
        errors.append(ModelError("", "re-read with positions", "", None))

    if _too_big(file):
        doubt()
        return None
    try:
        text = file.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a safe loader
        if _ANCHOR.search(text):
            expanded_size(data, _data_children)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError, ExpansionError):
        doubt()
        return None
    return data


def read_yaml(file: Path, smap: SourceMap, errors: list[ModelError]) -> Any:
    """Parse one file; syntax errors become ModelErrors (with line and column), not exceptions."""
    big = _too_big(file)
    if big:
        errors.append(ModelError("", big, "split it into several files (every *.yml in the region "
                                 "directory is read)", Position(file, 1, 1)))
        return None
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(ModelError("", f"cannot read file: {exc}", "check the file exists, is "
                                 "readable and is UTF-8 text", Position(file, 1, 1)))
        return None
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        errors.append(ModelError("", f"YAML syntax error: {problem}{context}",
                                 "check indentation, colons and quotes near this line", pos))
        return None
    except yaml.YAMLError as exc:
        errors.append(ModelError("", f"YAML error: {exc}", "check the file is valid YAML",
                                 Position(file, 1, 1)))
        return None
    except RecursionError:
        errors.append(ModelError("", "the file is nested too deeply to read", "a region is a few levels "
                                 "of mappings and lists: check for runaway brackets", Position(file, 1, 1)))
        return None
    if node is None:
        return None
    if _ANCHOR.search(text):
        try:
            expanded_size(node, _node_children)
        except ExpansionError as exc:
            errors.append(ModelError("", f"YAML aliases: {exc} (an alias bomb?)",
                                     "write the values out, or use few aliases of small values",
                                     _position(file, node)))
            return None
    walker = _Walker(file, smap, errors)
    try:
        return walker.value(node, ())
    except RecursionError:
        errors.append(ModelError("", "the file is nested too deeply to read", "a region is a few levels "
                                 "of mappings and lists: check for runaway brackets", Position(file, 1, 1)))
        return None
    except yaml.YAMLError as exc:  # e.g. a bad timestamp scalar
        mark = getattr(exc, "problem_mark", None)
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
        errors.append(ModelError("", f"YAML value error: {exc}", "quote the value", pos))
        return None
