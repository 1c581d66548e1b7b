"""Find a region's files, merge them, validate them, and return a `Region` or every error.

A region is a directory of YAML files (`inventories/<name>/`, searched recursively). Each file
holds one or more top-level sections (`region`, `sites`, `links`, ...); mappings from several
files are merged by name, and a name declared twice is an error. `inventory.yml`, the Ansible
inventory source, is not part of the model.
"""

from __future__ import annotations

import os
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


def region_dir(name_or_path: str) -> Path:
    """A region name (looked up under the inventories) or a path to a region directory."""
    candidate = Path(name_or_path)
    if "/" in name_or_path or candidate.is_absolute():
        if not candidate.is_dir():
            raise HcopsError(f"region directory {candidate} does not exist",
                             "check the path, or give a region name such as lab")
        return candidate
    for base in search_path():
        if (base / name_or_path).is_dir():
            return base / name_or_path
    known = ", ".join(available_regions()) or "(none)"
    raise HcopsError(f"unknown region {name_or_path!r}",
                     f"use one of: {known}, or give a path to a region directory")


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
    try:
        spec = RegionSpec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path = _loc_path(err["loc"], data)
            errors.append(ModelError(dotted(path), err["msg"], _hint(err["type"]), smap.find(path)))
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
