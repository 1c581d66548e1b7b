"""Bad input to `hcops plan`: a clear reason and a fix, exit 1 (64 for usage), never a traceback;
and the model's new equipment facts checked with file positions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inventories.errors import RegionInvalid
from inventories.loader import load_region

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("args", "message"), [
    (["--county", "atlantis"], "has no county 'atlantis'"),
    ([], "give either --county NAME or --all"),
    (["--county", "dayu", "--all"], "give either --county NAME or --all"),
    (["--county", "dayu", "-f", "docx"], "unknown format(s) docx"),
    (["--county", "dayu", "--date", "1st of May"], "is not a date"),
])
def test_render_bad_input(hcops, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    res = hcops("plan", "render", "--region", "example-city", "--out", str(tmp_path), *args)
    assert res.code == 1, res.stdout + res.stderr
    assert message in res.stderr and "fix:" in res.stderr and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_unknown_county_lists_the_known_ones(hcops) -> None:  # type: ignore[no-untyped-def]
    res = hcops("plan", "verify", "--region", "example-city", "--county", "gotham")
    assert res.code == 1 and "zhanggong" in res.stderr


def test_verify_on_an_unprovisioned_region_says_how_to_provision(hcops, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    res = hcops("plan", "verify", "--region", "example-city", "--county", "dayu", "--out", str(tmp_path))
    assert res.code == 1
    assert "has not been provisioned" in res.stderr and "hcops infra up --region example-city" in res.stderr


def test_verify_unknown_item_id(hcops) -> None:  # type: ignore[no-untyped-def]
    res = hcops("plan", "verify", "--region", "example-city", "--county", "dayu", "--only", "PORT-nowhere")
    assert res.code == 1 and "unknown checklist item(s) PORT-nowhere" in res.stderr
    assert "PORT-dayu-fe1" in res.stderr


def test_verify_requires_county_usage_error(hcops) -> None:  # type: ignore[no-untyped-def]
    res = hcops("plan", "verify", "--region", "example-city")
    assert res.code == 64


def test_board_of_a_region_nobody_verified(hcops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import json

    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    res = hcops("-o", "json", "plan", "board", "--region", "example-city", "--html", str(tmp_path / "b.html"))
    assert res.code == 0, res.stderr
    board = json.loads(res.stdout)
    assert board["counties"] == 18 and board["ready"] == []
    assert {r["status"] for r in board["rows"]} == {"not verified"}
    dayu = next(r for r in board["rows"] if r["county"] == "dayu")
    assert dayu["missing"] == ["HW-dayu-fe1", "PORT-dayu-fe1", "TIME-dayu-fe1", "AGENT-dayu-fe1", "ZBX-dayu-fe1",
                               "BASE-dayu-fe1", "TUN-dayu-collector"]
    assert "0 of 18 counties ready" in (tmp_path / "b.html").read_text()


def _copy_city(tmp_path: Path) -> Path:
    dst = tmp_path / "example-city"
    shutil.copytree(REPO / "inventories" / "example-city", dst)
    return dst


def test_unknown_hardware_model_is_pinned_to_its_line(tmp_path: Path) -> None:
    root = _copy_city(tmp_path)
    f = root / "counties" / "dayu.yml"
    f.write_text(f.read_text().replace("model: ngfw-1u", "model: ngfw-9000"))
    with pytest.raises(RegionInvalid) as exc:
        load_region(str(root))
    text = exc.value.render()
    assert "dayu.yml:" in text and "equipment.dayu.firewall.model: unknown hardware model 'ngfw-9000'" in text
    assert "fix: use one of: fe-server-2u" in text


def test_ups_and_rack_must_carry_what_the_site_buys(tmp_path: Path) -> None:
    root = _copy_city(tmp_path)
    f = root / "counties" / "dayu.yml"
    f.write_text(f.read_text().replace("{model: access-switch-48, quantity: 1,",
                                      "{model: access-switch-48, quantity: 40,"))
    with pytest.raises(RegionInvalid) as exc:
        load_region(str(root))
    text = exc.value.render()
    assert "site dayu needs 47 rack units but its racks hold 42" in text
    assert "site dayu draws 5350 W but its UPS delivers 2700 W" in text


def test_server_lines_name_their_own_hosts(tmp_path: Path) -> None:
    root = _copy_city(tmp_path)
    f = root / "counties" / "dayu.yml"
    f.write_text(f.read_text().replace("{model: fe-server-2u, hosts: [dayu-fe1]",
                                       "{model: rack-42u, quantity: 2, hosts: [dayu-fe1, anyuan-fe1]"))
    with pytest.raises(RegionInvalid) as exc:
        load_region(str(root))
    text = exc.value.render()
    assert "equipment.dayu.collector-server.model: 'rack-42u' is a rack, not a server" in text
    assert "equipment.dayu.collector-server.hosts[1]: host 'anyuan-fe1' is not in site 'dayu'" in text
    assert "quantity 2 but 2 host(s)" not in text  # consistent quantity is fine


def test_board_merges_runs_per_item_and_flags_results_from_another_model(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.plans.board import build_board
    from infra.plans.checklist import checklist
    from infra.plans.revision import model_revision
    from infra.plans.store import save_latest
    from infra.plans.verify import AcceptanceReport, ItemResult

    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    city = load_region("example-city")
    digest = model_revision(city).digest
    items = checklist(city, "dayu")

    def run(when: str, results: dict[str, bool], model: str = digest) -> None:
        save_latest(AcceptanceReport("example-city", "dayu", when, when, "rev", model, "0", [
            ItemResult(i.id, i.kind, i.title, i.host, i.expect, results[i.id], "ok" if results[i.id] else "broken",
                       {}, when, 0.1, model) for i in items if i.id in results]))

    run("2026-12-01T08:00:00+00:00", {i.id: True for i in items})
    row = next(r for r in build_board(city).rows if r.county == "dayu")
    assert row.ready and row.status == "ready" and row.current_model
    run("2026-12-01T09:00:00+00:00", {"PORT-dayu-fe1": False})
    row = next(r for r in build_board(city).rows if r.county == "dayu")
    assert row.status == "failing" and row.failed == ["PORT-dayu-fe1"]
    cells = {c.id: c for c in row.cells}
    assert cells["PORT-dayu-fe1"].checked_at == "2026-12-01T09:00:00+00:00"
    assert cells["HW-dayu-fe1"].checked_at == "2026-12-01T08:00:00+00:00" and cells["HW-dayu-fe1"].state == "pass"
    run("2026-12-01T10:00:00+00:00", {"PORT-dayu-fe1": True}, model="0" * 64)
    row = next(r for r in build_board(city).rows if r.county == "dayu")
    assert row.ready and not row.current_model  # passed, but one item was checked against another model
    assert [c.id for c in row.cells if not c.current] == ["PORT-dayu-fe1"]
