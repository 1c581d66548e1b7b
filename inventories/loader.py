"""Find a region's files, merge them, validate them, and return a `Region` or every error.

A region is a directory of YAML files (`inventories/<name>/`, searched recursively). Each file
holds one or more top-level sections (`region`, `sites`, `links`, ...); mappings from several
files are merged by name, and a name declared twice is an error. `inventory.yml`, the Ansible
inventory source, is not part of the model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from inventories.checks import check
from inventories.errors import HcopsError, ModelError, Position, RegionInvalid
from inventories.model import Region
from inventories.schema import SECTIONS, RegionSpec, ServiceKind
from inventories.source import PathKey, SourceMap, dotted, read_yaml, read_yaml_fast

INVENTORIES_DIR = Path(__file__).resolve().parent
ANSIBLE_SOURCE = "inventory.yml"


def search_path() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("HCOPS_INVENTORIES", "").split(os.pathsep) if p]
    return [*extra, INVENTORIES_DIR]


def available_regions() -> list[str]:
    names: set[str] = set()
    for base in search_path():
        if base.is_dir():
            names.update(p.parent.name for p in base.glob("*/region.yml"))
    return sorted(names)


NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


def _looks_like_name(arg: str) -> bool:
    return bool(NAME_RE.match(arg))


def region_dir(name_or_path: str) -> Path:
    """A region name (looked up in `search_path()`) or a path to a region directory.

    A region name is lower-case letters, digits and dashes, and is looked up first; anything
    else (`.`, `..`, `./lab`, `/srv/regions/x`, `My Region`) is a path. A name that is found
    nowhere but exists as a directory here is a path too.
    """
    if _looks_like_name(name_or_path):
        for base in search_path():
            if (base / name_or_path).is_dir():
                return base / name_or_path
        if not Path(name_or_path).exists():
            known = ", ".join(available_regions()) or "(none)"
            raise HcopsError(f"unknown region {name_or_path!r}",
                             f"use one of: {known}, or give a path to a region directory "
                             "(regions elsewhere: HCOPS_INVENTORIES=/dir/holding/regions)")
    candidate = Path(os.path.normpath(Path(name_or_path).absolute()))
    try:
        candidate.stat()
    except PermissionError:
        raise HcopsError(f"permission denied reading region directory {candidate}: a directory above it "
                         "may not be searched by this user",
                         f"give this user search access to every directory on the way (namei -l {candidate})"
                         ) from None
    except OSError:
        pass
    if not candidate.exists():
        raise HcopsError(f"region directory {name_or_path} does not exist",
                         "check the path, or give a region name such as lab")
    if not candidate.is_dir():
        raise HcopsError(f"{name_or_path} is a file, not a directory",
                         "give the region's directory (the one holding region.yml), not a file in it")
    return candidate


def _check_readable(root: Path, deep: bool = True) -> None:
    """rglob skips what it cannot read; say "permission denied" instead of "no region files"."""
    def fail(exc: OSError) -> None:
        folder = exc.filename or root
        if isinstance(exc, PermissionError):
            raise HcopsError(f"permission denied reading region directory {folder}",
                             f"give this user read and search access (ls -ld {folder}; chmod u+rx)")
        raise HcopsError(f"cannot read region directory {folder}: {exc.strerror}", "check the path")

    if not deep:
        try:
            with os.scandir(root):
                return
        except OSError as exc:
            fail(exc)
    for _ in os.walk(root, onerror=fail):
        pass


def _not_a_region(name_or_path: str, root: Path) -> None:
    """A directory without region.yml is not a region: say which regions lie below it, if any."""
    inner = sorted(p.parent for depth in ("*", "*/*") for p in root.glob(f"{depth}/region.yml")
                   if not any(part.startswith(".") for part in p.relative_to(root).parts))
    if inner:
        names = ", ".join(str(p.relative_to(root)) for p in inner[:6]) + (", ..." if len(inner) > 6 else "")
        raise HcopsError(f"{name_or_path} holds regions ({names}); it is not one region",
                         f"name one of them, e.g. {inner[0]}, or set HCOPS_INVENTORIES={inner[0].parent} "
                         "and use the names")
    raise HcopsError(f"{name_or_path} is not a region directory: it has no region.yml",
                     "a region directory holds region.yml (`region: {name: ...}`) and the other model files")


def region_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.y*ml")
                  if p.suffix in (".yml", ".yaml") and p.name != ANSIBLE_SOURCE)


_HINTS = {
    "missing": "add this key",
    "extra_forbidden": "remove it, or check its spelling against the documented keys",
    "literal_error": "use one of the allowed values",
    "union_tag_invalid": "set `kind` to one of the allowed service kinds",
    "union_tag_not_found": "add a `kind:` key (mysql, oracle, nginx, canary, zabbix, collector, "
                           "object_storage)",
    "string_pattern_mismatch": "names are lower-case letters, digits and dashes, starting with a letter",
    "ip_v4_network": "write a network like 10.1.0.0/24 with host bits zero",
    "ip_v4_address": "write an IPv4 address like 10.1.0.10",
}


def _hint(err_type: str) -> str:
    return _HINTS.get(err_type, "correct the value's type or range as the message says")


def _loc_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """Pydantic locations include union tags (`nginx`) that are not in the data: drop them."""
    out: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
            out.append(part)
        elif isinstance(node, dict) and part in get_args(ServiceKind):
            continue
        else:
            out.append(part)
            node = None
    return tuple(out)


Reader = Callable[[Path, SourceMap, list[ModelError]], Any]


def _merge(root: Path, files: list[Path], smap: SourceMap, errors: list[ModelError],
           reader: Reader = read_yaml) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for file in files:
        fmap = SourceMap()
        data = reader(file, fmap, errors)
        if data is None:
            continue
        if not isinstance(data, dict):
            errors.append(ModelError("", "a region file must be a mapping of sections",
                                     f"start the file with one of: {', '.join(SECTIONS)}", fmap.find(())))
            continue
        for section, body in data.items():
            if section not in SECTIONS:
                errors.append(ModelError(section, f"unknown section {section!r}",
                                         f"sections are: {', '.join(SECTIONS)}", fmap.find((section,))))
                continue
            if section == "region":
                if "region" in merged:
                    errors.append(ModelError("region", "the `region` section is declared twice",
                                             "keep one `region:` section in the region's files",
                                             fmap.find(("region",))))
                    continue
                merged["region"] = body
                continue
            if not isinstance(body, dict):
                errors.append(ModelError(section, f"`{section}` must be a mapping of names to entries",
                                         "write `name:` keys under it", fmap.find((section,))))
                continue
            target = merged.setdefault(section, {})
            for name, entry in body.items():
                if name in target:
                    first = smap.find((section, name))
                    errors.append(ModelError(f"{section}.{name}",
                                             f"{name!r} is declared twice in {section} (first at {first})",
                                             "names are unique in a region: remove or rename one",
                                             fmap.find((section, name))))
                    continue
                target[name] = entry
        smap.adopt(fmap)
    if "region" not in merged and not any(e.message.startswith("YAML") for e in errors):
        errors.append(ModelError("region", "no `region:` section found",
                                 "add region.yml with `region: {name: <region>}`",
                                 Position(root / "region.yml", 1, 1)))
    return merged


def _schema_error(root: Path, path: PathKey, message: str, err_type: str, smap: SourceMap) -> ModelError:
    """A missing top-level section is pinned to the file that should hold it, not to any file."""
    if err_type == "missing" and len(path) == 1:
        section = str(path[0])
        home = next((root / f"{section}{ext}" for ext in (".yml", ".yaml") if (root / f"{section}{ext}").exists()),
                    root / "region.yml")
        empty = home.exists() and not _has_content(home)
        why = f"{home.name} is empty" if empty else f"no file declares `{section}:`"
        return ModelError(section, f"section `{section}` is missing ({why})",
                          f"declare `{section}:` in {home.name}", Position(home, 1, 1))
    return ModelError(dotted(path), message, _hint(err_type), smap.find(path))


def _has_content(file: Path) -> bool:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True
    return any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines())


def _load_fast(root: Path, files: list[Path]) -> Region | None:
    """The common case, a valid region, without tracking positions; None at the first doubt."""
    errors: list[ModelError] = []
    data = _merge(root, files, SourceMap(), errors, reader=read_yaml_fast)
    if errors:
        return None
    try:
        spec = RegionSpec.model_validate(data)
    except ValidationError:
        return None
    region = Region(spec, root)
    if root.name != spec.region.name or check(region):
        return None
    return region


def load_region(name_or_path: str) -> Region:
    """Load and validate a region; raise RegionInvalid with every problem found."""
    root = region_dir(name_or_path)
    _check_readable(root, deep=False)
    if not any((root / f"region{ext}").is_file() for ext in (".yml", ".yaml")):
        _not_a_region(name_or_path, root)
    _check_readable(root)
    files = region_files(root)
    if not files:
        raise HcopsError(f"no region files in {root}", "a region needs at least region.yml")
    fast = _load_fast(root, files)
    if fast is not None:
        return fast
    # Something is wrong: read again with positions so that every error names file and line.
    errors: list[ModelError] = []
    smap = SourceMap()
    data = _merge(root, files, smap, errors)
    spec: RegionSpec | None = None
    if errors and any(e.path == "" for e in errors):
        # A file could not be read as a region file: what it held is unknown, so the schema's
        # "missing" and the checks' "unknown host" would be false errors in other files.
        raise RegionInvalid(root.name, errors)
    unreadable = {e.path for e in errors}  # values the reader already reported: no second error there
    try:
        spec = RegionSpec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path = _loc_path(err["loc"], data)
            if dotted(path) not in unreadable:
                errors.append(_schema_error(root, path, err["msg"], err["type"], smap))
    if spec is not None:
        region = Region(spec, root)
        if root.name != spec.region.name:
            errors.append(ModelError("region.name", f"region name {spec.region.name!r} differs from its "
                                     f"directory {root.name!r}", "make them the same",
                                     smap.find(("region", "name"))))
        for path, message, hint in check(region):
            errors.append(ModelError(dotted(path), message, hint, smap.find(path)))
    if errors:
        raise RegionInvalid(root.name, errors)
    assert spec is not None
    return region
