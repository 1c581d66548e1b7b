"""Property: any mutation of a valid region loads as a valid model or as clean errors, never
as an exception escaping the loader."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventories.errors import RegionInvalid
from inventories.loader import INVENTORIES_DIR, load_region
from inventories.model import Region

LAB_FILES = {p.name: yaml.safe_load(p.read_text()) for p in (INVENTORIES_DIR / "lab").glob("*.yml")
             if p.name != "inventory.yml"}

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False),
    st.text(max_size=12), st.sampled_from(["10.231.1.11", "10.231.9.0/24", "0.0.0.0/0", "db1", "internet",
                                           "lab", "mysql", "nginx", "*/5 * * * *", "cloud.vpc"]),
    st.lists(st.sampled_from(["db1", "app1", "zz"]), max_size=3), st.just({}), st.just([]),
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, prefix + (i,))
    return out


def mutate(doc: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        parent[f"{last}x" if isinstance(last, str) else "x"] = parent.pop(last)
    else:
        parent[last] = value
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_region_loads_or_fails_cleanly(data: st.DataObject) -> None:
    files = yaml.safe_load(yaml.safe_dump(LAB_FILES))  # deep copy
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(files)))
        path = data.draw(st.sampled_from(paths(files[name])))
        action = data.draw(st.sampled_from(["replace", "delete", "rename"]))
        if action != "replace" and not path:
            continue
        files[name] = mutate(files[name], path, action, data.draw(junk))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lab"
        root.mkdir()
        shutil.copy(INVENTORIES_DIR / "lab" / "inventory.yml", root)
        for name, doc in files.items():
            (root / name).write_text(yaml.safe_dump(doc))
        try:
            region = load_region(str(root))
        except RegionInvalid as exc:
            assert exc.errors
            for err in exc.errors:
                assert err.message and err.hint and err.position is not None
            return
        assert isinstance(region, Region)
        # A model that loads must answer its derived questions without failing.
        for svc in region.services:
            for host in region.service_hosts(svc):
                region.service_address(svc, host)
        region.mysql_server_ids  # noqa: B018
