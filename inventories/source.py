"""Read region YAML files into plain data while remembering where every value stands.

PyYAML's libyaml composer builds the node tree (fast enough for a 10,000-host region); we walk
it ourselves so that each mapping key and list item gets a file position, and so that duplicate
keys, which YAML loaders silently overwrite, become reported errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from inventories.errors import ModelError, Position

# libyaml is in the PyPI wheels; the pure-Python loader is the fallback.
_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PathKey = tuple[str | int, ...]


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
        return self.constructor.construct_object(node, deep=True)

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
    try:
        return yaml.load(file.read_text(encoding="utf-8"), Loader=_FastLoader)  # noqa: S506 - a safe loader
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        errors.append(ModelError("", "re-read with positions", "", None))
        return None


def read_yaml(file: Path, smap: SourceMap, errors: list[ModelError]) -> Any:
    """Parse one file; syntax errors become ModelErrors (with line and column), not exceptions."""
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
    if node is None:
        return None
    walker = _Walker(file, smap, errors)
    try:
        return walker.value(node, ())
    except yaml.YAMLError as exc:  # e.g. a bad timestamp scalar
        mark = getattr(exc, "problem_mark", None)
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
        errors.append(ModelError("", f"YAML value error: {exc}", "quote the value", pos))
        return None
