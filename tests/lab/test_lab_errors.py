"""Bad input to the lab commands: clear message, exit 1, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.fixtures.lab import Lab, make_scratch_region


def _clean_error(res: CliResult, *needles: str) -> None:
    assert res.code == 1
    assert "Traceback" not in res.stderr + res.stdout
    for n in needles:
        assert n in res.stderr, res.stderr


@pytest.mark.lab
def test_unknown_host_and_link(lab: Lab, hcops: Callable[..., CliResult]) -> None:
    r = lab.region_arg
    _clean_error(hcops("lab", "ssh", "db9", "--region", r, "--", "true"), "unknown host 'db9'", "db1")
    _clean_error(hcops("lab", "stop-host", "db9", "--region", r), "unknown host 'db9'")
    _clean_error(hcops("lab", "cut-link", "fibre-9", "--region", r), "unknown link 'fibre-9'", "dedicated-line")


def test_not_provisioned_region(tmp_path: Path, hcops: Callable[..., CliResult],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    region = make_scratch_region(tmp_path, "never-built", (201, 202))
    _clean_error(hcops("lab", "ssh", "db1", "--region", str(region), "--", "true"), "has not been provisioned",
                 "hcops infra up")
    _clean_error(hcops("infra", "outputs", "--region", str(region)), "has not been provisioned")
    res = hcops("--output", "json", "infra", "status", "--region", str(region))
    assert res.code == 0 and '"state": "absent"' in res.stdout


def test_destroy_needs_yes_without_a_terminal(tmp_path: Path, hcops: Callable[..., CliResult],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    region = make_scratch_region(tmp_path, "never-built", (201, 202))
    _clean_error(hcops("infra", "down", "--region", str(region)), "needs confirmation", "--yes")


def test_address_in_use_is_refused(tmp_path: Path, hcops: Callable[..., CliResult],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab whose network overlaps addresses already on this machine (here: the shared lab's) is refused."""
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    import subprocess

    region = make_scratch_region(tmp_path, "clash", (211, 212))
    subprocess.run(["ip", "link", "add", "hcopstest0", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.231.211.254/24", "dev", "hcopstest0"], check=True)
        _clean_error(hcops("infra", "up", "--region", str(region)), "10.231.211.254", "already in use on hcopstest0")
    finally:
        subprocess.run(["ip", "link", "del", "hcopstest0"], capture_output=True, check=False)
        hcops("infra", "down", "--region", str(region), "--yes")


def test_not_root_is_refused(hcops: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    _clean_error(hcops("infra", "up", "--region", "lab"), "needs root", "run it as root")
    _clean_error(hcops("lab", "cut-link", "dedicated-line", "--region", "lab"), "needs root")


def test_missing_tool_names_its_package(hcops: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    real_which = shutil.which
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: None if name == "tinyproxy" else real_which(name))
    _clean_error(hcops("infra", "up", "--region", "lab"), "missing tools for the lab: tinyproxy",
                 "apt-get install tinyproxy")


def test_failed_image_build_names_the_step_and_shows_its_output(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A mirror nobody answers (a closed loopback port) fails debootstrap; the error says where and why."""
    import os

    from infra.lab import image
    from inventories.errors import HcopsError

    if os.geteuid() != 0:
        pytest.skip("building an image needs root")
    monkeypatch.setenv("HCOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(image, "mirror", lambda: "http://127.0.0.1:9/debian")
    with pytest.raises(HcopsError) as err:
        image.ensure()
    assert "step 'debootstrap'" in err.value.message
    assert "127.0.0.1" in err.value.message  # the tail of debootstrap's own output
    assert "full log:" in err.value.hint
    assert not image.is_built()
