"""The `pacs` service kind: derived facts on the lab, and each bad value a clear model error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inventories.ansible_groups import build
from inventories.errors import RegionInvalid
from inventories.loader import INVENTORIES_DIR, load_region

GOOD = """services:
  pacs:
    kind: pacs
    host: collector1
{extra}
rules:
  modalities-to-pacs:
    from: {source}
    to: pacs
    ports: [4242, 8042]

backup_policies:
  pacs-nightly:
    service: pacs
    schedule: "0 2 * * *"
    local_target: {{host: {target}, path: /srv/backup/pacs}}
"""


def _region(tmp_path: Path, extra: str = "", source: str = "local-dc.lan", target: str = "backup1",
            text: str | None = None) -> Path:
    region = tmp_path / "lab"
    shutil.copytree(INVENTORIES_DIR / "lab", region)
    (region / "pacs.yml").write_text(text if text is not None else GOOD.format(extra=extra, source=source,
                                                                                target=target))
    return region


def _errors(region: Path) -> list[str]:
    with pytest.raises(RegionInvalid) as info:
        load_region(str(region))
    return [f"{e.path}: {e.message} | fix: {e.hint}" for e in info.value.errors]


def test_lab_pacs_derived_facts() -> None:
    lab = load_region("lab")
    assert lab.service_hosts("pacs") == ["collector1"]
    assert lab.service_ports("pacs") == [8042, 4242]
    assert str(lab.service_address("pacs", "collector1")) == "10.231.1.10"
    assert "pacs" in lab.host_roles("collector1")
    assert len(lab.hosts) == 7  # the PACS shares a host: the lab keeps its 7
    svc = lab.services["pacs"]
    assert (svc.ae_title, svc.storage_dir) == ("RUIJIN_PACS", "/var/lib/orthanc/db")  # type: ignore[union-attr]
    inv = build(lab)
    assert inv.groups["role_pacs"] == ["collector1"]
    assert lab.backup_policies["pacs-nightly"].service == "pacs"


def test_defaults(tmp_path: Path) -> None:
    reg = load_region(str(_region(tmp_path)))
    svc = reg.services["pacs"]
    assert (svc.port, svc.dicom_port, svc.ae_title, svc.storage_dir) == (  # type: ignore[union-attr]
        8042, 4242, "HCOPS_PACS", "/var/lib/orthanc/db")


@pytest.mark.parametrize(("extra", "want"), [
    ("    port: 4242", "REST and DICOM need a port each"),
    ("    ae_title: ruijin", "services.pacs.ae_title"),
    ("    ae_title: A234567890123456X", "services.pacs.ae_title"),
    ("    storage_dir: var/lib/orthanc", "services.pacs.storage_dir"),
    ("    storage_dir: /var/lib/../etc", "must not contain `..`"),
    ("    dicom_port: 70000", "services.pacs.dicom_port"),
    ("    host: nosuch", "unknown host 'nosuch'"),
])
def test_bad_values_are_model_errors(tmp_path: Path, extra: str, want: str) -> None:
    text = GOOD.format(extra=extra, source="local-dc.lan", target="backup1")
    if extra.strip().startswith("host:"):
        text = text.replace("    host: collector1\n", "")
    errs = _errors(_region(tmp_path, text=text))
    assert any(want in e for e in errs), errs


def test_images_never_open_to_the_internet(tmp_path: Path) -> None:
    errs = _errors(_region(tmp_path, source="internet"))
    assert any("pacs port(s) [4242, 8042] open to 0.0.0.0/0" in e for e in errs), errs


def test_backup_onto_its_own_host_is_refused(tmp_path: Path) -> None:
    errs = _errors(_region(tmp_path, target="collector1"))
    assert any("backed up onto their own host collector1" in e and "backup host" in e for e in errs), errs


def test_the_lab_requires_a_pacs_backup_policy(tmp_path: Path) -> None:
    text = GOOD.format(extra="", source="local-dc.lan", target="backup1").split("backup_policies:")[0]
    errs = _errors(_region(tmp_path, text=text))
    assert any("pacs service 'pacs' has no backup policy" in e for e in errs), errs
