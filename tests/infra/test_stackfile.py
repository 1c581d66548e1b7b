"""Stack files (`Pulumi.<region>.yaml`): read by the offline preview and before every real run;
bad ones are clear errors, not tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.openstack.config import ProgramSettingsError
from infra.openstack.stackfile import PROJECT_DIR, stack_values
from tests.conftest import CliResult

Hcops = Callable[..., CliResult]


def test_the_shipped_stack_file_is_example_citys() -> None:
    values = stack_values("example-city")
    assert values["publicCloud"]["flavors"]["48c112g"] == "m6.12xlarge.8"
    assert "region" not in values  # the stack's own name, not a setting
    assert (PROJECT_DIR / "Pulumi.yaml").exists()  # beside the project, where `pulumi` looks
    assert stack_values("no-such-region") == {}


@pytest.mark.parametrize(("text", "message"), [
    ("config: [1, 2\n", "is not valid YAML"),
    ("config:\n  hcops:region: other-city\n", "says hcops:region is 'other-city'"),
    ("config: just-a-string\n", "`config` is not a mapping"),
])
def test_bad_stack_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    monkeypatch.setenv("HCOPS_PULUMI_PROJECT_DIR", str(tmp_path))
    (tmp_path / "Pulumi.lab.yaml").write_text(text)
    with pytest.raises(ProgramSettingsError) as err:
        stack_values("lab")
    assert message in err.value.message and str(tmp_path / "Pulumi.lab.yaml") in err.value.message


def test_a_bad_stack_file_stops_the_preview_cleanly(hcops: Hcops, lab_os_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCOPS_PULUMI_PROJECT_DIR", str(tmp_path))
    (tmp_path / "Pulumi.lab.yaml").write_text("config:\n  hcops:publicCloud: {flavorLookup: guess}\n")
    result = hcops("infra", "preview", "--region", str(lab_os_dir), "--offline")
    assert result.code == 1
    assert "hcops:publicCloud.flavorLookup is 'guess'" in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.stderr
