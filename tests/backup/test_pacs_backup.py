"""The lab's PACS policy end to end against a real Orthanc on loopback and a real SeaweedFS:
synthetic studies stored over REST, the storage tree backed up (full, then incremental) to a
local store and offsite, verified from offsite by restore (sha256, DICOM parse, SOPInstanceUIDs),
restored through the CLI; and bad input: unknown policy, wrong kind, Orthanc refusing auth."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dr.backup import engine, pacs, restore, verify
from dr.backup.catalog import Catalog
from dr.backup.dicom_synth import StudyPlan, generate
from dr.backup.keys import load_key
from inventories.errors import HcopsError
from inventories.loader import load_region
from inventories.model import Region
from tests.backup.conftest import Weed
from tests.backup.orthanc_server import Server
from tests.conftest import CliResult

POLICY = "pacs-nightly"


@pytest.fixture()
def lab(state: Path) -> Region:
    return load_region("lab")


def _ov(tmp_path: Path, srv: Server, weed: Weed | None = None, password: str | None = None) -> engine.Overrides:
    return engine.Overrides(local_dir=tmp_path / "store", tree_dir=srv.storage, orthanc_url=srv.url,
                            orthanc_password=srv.password if password is None else password,
                            s3_endpoint=weed.endpoint if weed else None, s3_credentials=weed.ini if weed else None)


def test_synthetic_studies_are_deterministic_dicom() -> None:
    plan = StudyPlan(studies=2, series=2, instances=3, seed=5)
    a, b = list(generate(plan)), list(generate(plan))
    assert [i.data for i in a] == [i.data for i in b] and len(a) == plan.total == 12
    assert len({i.sop_uid for i in a}) == 12 and len({i.series_uid for i in a}) == 4
    assert len({i.study_uid for i in a}) == 2
    assert {i.sop_uid for i in generate(StudyPlan(seed=6))}.isdisjoint(i.sop_uid for i in a)
    assert all(i.data[128:132] == b"DICM" for i in a)  # Part-10 files


def test_load_reads_back_and_auth_is_enforced(orthanc: Server) -> None:
    assert orthanc.anonymous_status() == 401
    res = pacs.load_studies(orthanc.client(), StudyPlan(studies=2, series=1, instances=2))
    assert res.ok and res.stored == 4 and len(res.studies) == 2
    assert res.uids == orthanc.client().sop_instance_uids()
    again = pacs.load_studies(orthanc.client(), StudyPlan(studies=2, series=1, instances=2))
    assert again.ok and orthanc.client().sop_instance_uids() == res.uids  # AlreadyStored, nothing new
    with pytest.raises(HcopsError, match=r"refused the credentials of 'hcops' \(HTTP 401\)") as info:
        orthanc.client("not-the-password").sop_instance_uids()
    assert "secret store" in info.value.hint


def test_pacs_policy_backs_up_verifies_and_restores(lab: Region, orthanc: Server, weed: Weed, tmp_path: Path,
                                                    hcops: Callable[..., CliResult]) -> None:
    from infra.lab.s3 import create_buckets
    create_buckets(weed.client(), {"offsite-backups": (True, True)}, ["offsite-backups"])
    client = orthanc.client()
    pacs.load_studies(client, StudyPlan(studies=2, series=2, instances=3, seed=1))
    ov = _ov(tmp_path, orthanc, weed)

    first = engine.run_policy(lab, POLICY, "auto", ov)
    assert first.ok, [r.error for r in first.results]
    full = first.results[-1]
    assert (full.kind, full.state, full.facts["dicom_instances"]) == ("files", "good", 12)
    assert "Orthanc holds 12 instances" in first.why

    pacs.load_studies(client, StudyPlan(studies=1, series=1, instances=4, seed=2))
    second = engine.run_policy(lab, POLICY, "auto", ov)
    assert second.ok, [r.error for r in second.results]
    inc = second.results[-1]
    cat = Catalog.for_region("lab")
    try:
        assert cat.get(inc.backup_id).parent == full.backup_id  # incremental: only the new files moved
        assert {"local", "offsite"} <= set(cat.get(inc.backup_id).places)  # good only when both confirmed
    finally:
        cat.close()
    assert inc.facts["dicom_instances"] == 16
    assert 4 <= int(inc.facts["files_changed"]) < int(inc.facts["files_scanned"])  # type: ignore[call-overload]

    # verify the offsite copy by restore, through the CLI as on-call staff run it
    r = hcops("-o", "json", "backup", "verify", inc.backup_id, "--region", "lab", "--from", "offsite",
              "--s3-endpoint", weed.endpoint, "--s3-credentials", str(weed.ini), "--local-dir", str(tmp_path / "store"))
    assert r.code == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["ok"] and "16 DICOM files parse with pydicom" in got["detail"], got
    assert "include all 16 Orthanc held at backup time" in got["detail"]
    print("verify:", got["detail"])

    target = tmp_path / "restored"
    r = hcops("backup", "restore", inc.backup_id, "--region", "lab", "--target-dir", str(target),
              "--local-dir", str(tmp_path / "store"))
    assert r.code == 0, r.stderr
    uids, other = pacs.dicom_uids(target)
    assert uids == client.sop_instance_uids() and len(uids) == 16 and other >= 1  # + Orthanc's index
    print(f"restore: {len(uids)} DICOM instances, SOPInstanceUIDs equal Orthanc's; {other} other file(s)")


def test_verify_catches_a_missing_instance(tmp_path: Path, orthanc: Server) -> None:
    pacs.load_studies(orthanc.client(), StudyPlan(studies=1, series=1, instances=3))
    uids = orthanc.client().sop_instance_uids()
    assert "3 DICOM files parse" in pacs.check_restored(orthanc.storage, uids)
    with pytest.raises(HcopsError, match="1 of the 4 instances Orthanc held at backup time are not in the restored"):
        pacs.check_restored(orthanc.storage, uids | {"2.25.1"})
    broken = tmp_path / "broken"
    broken.mkdir()
    one = next(p for p in orthanc.storage.rglob("*") if p.is_file() and p.read_bytes()[128:132] == b"DICM")
    (broken / "x").write_bytes(one.read_bytes()[:300])  # a truncated image
    with pytest.raises(HcopsError, match="does not parse as DICOM"):
        pacs.check_restored(broken, set())


def test_bad_input_gives_clear_errors(lab: Region, orthanc: Server, weed: Weed, tmp_path: Path,
                                      hcops: Callable[..., CliResult]) -> None:
    with pytest.raises(HcopsError, match="has no backup policy 'pacs-weekly'") as info:
        engine.run_policy(lab, "pacs-weekly", "auto", _ov(tmp_path, orthanc, weed))
    assert "appdb-nightly, pacs-nightly" in info.value.hint
    with pytest.raises(HcopsError, match="--kind binlog is for MariaDB"):
        engine.run_policy(lab, POLICY, "binlog", _ov(tmp_path, orthanc, weed))
    with pytest.raises(HcopsError, match="no backup of the tree to build an incremental on"):
        engine.run_policy(lab, POLICY, "incremental", _ov(tmp_path, orthanc, weed))
    with pytest.raises(HcopsError, match="refused the credentials"):
        engine.run_policy(lab, POLICY, "full", _ov(tmp_path, orthanc, weed, password="wrong"))
    cat = Catalog.for_region("lab")
    try:
        assert cat.entries(POLICY) == []  # nothing recorded, nothing stored
    finally:
        cat.close()
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.hcb"))
    r = hcops("backup", "run", "--region", "lab", "--policy", "nope")
    assert r.code == 1 and "has no backup policy 'nope'" in r.stderr and "fix:" in r.stderr
    assert "Traceback" not in r.stderr


def test_restore_of_part_of_the_tree(lab: Region, orthanc: Server, weed: Weed, tmp_path: Path) -> None:
    from infra.lab.s3 import create_buckets
    create_buckets(weed.client(), {"offsite-backups": (True, True)}, ["offsite-backups"])
    pacs.load_studies(orthanc.client(), StudyPlan(studies=1, series=1, instances=2))
    out = engine.run_policy(lab, POLICY, "full", _ov(tmp_path, orthanc, weed))
    assert out.ok
    bid = out.results[-1].backup_id
    one = next(p for p in orthanc.storage.rglob("*") if p.is_file() and p.read_bytes()[128:132] == b"DICM")
    rel = str(one.relative_to(orthanc.storage))
    cat = Catalog.for_region("lab")
    try:
        res = restore.restore_tree(load_key("lab"), engine.DirStore(tmp_path / "store"), cat, bid,
                                   tmp_path / "part", paths=[rel])
        v = verify.verify(load_key("lab"), engine.DirStore(tmp_path / "store"), cat, bid)
    finally:
        cat.close()
    assert res.files == 1 and (tmp_path / "part" / rel).read_bytes() == one.read_bytes()
    assert v.ok and "2 DICOM files parse" in v.detail


def test_pacs_load_cli_bad_input(state: Path, hcops: Callable[..., CliResult]) -> None:
    r = hcops("backup", "pacs-load", "--region", "lab", "--service", "front")
    assert r.code == 64 and "not a pacs service of region lab" in r.stderr and "use one of: pacs" in r.stderr
    r = hcops("backup", "pacs-load", "--region", "lab", "--studies", "0")
    assert r.code == 64 and "--studies" in r.stderr
    r = hcops("backup", "pacs-load", "--region", "lab")  # never deployed: no password to log in with
    assert r.code == 1 and "no REST password for pacs" in r.stderr and "hcops deploy --region lab" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_pacs_that_does_not_answer_is_still_backed_up(lab: Region, orthanc: Server, weed: Weed,
                                                         tmp_path: Path) -> None:
    """Orthanc down (nothing listening): the images are backed up without the instance list, and
    verify still parses every restored DICOM file; a refused login, in contrast, stops the run."""
    from infra.lab.s3 import create_buckets
    from tests.backup.orthanc_server import free_port
    create_buckets(weed.client(), {"offsite-backups": (True, True)}, ["offsite-backups"])
    pacs.load_studies(orthanc.client(), StudyPlan(studies=1, series=1, instances=3))
    orthanc.stop()
    ov = _ov(tmp_path, orthanc, weed)
    ov.orthanc_url = f"http://127.0.0.1:{free_port()}"
    out = engine.run_policy(lab, POLICY, "auto", ov)
    assert out.ok, [r.error for r in out.results]
    assert "cannot reach Orthanc" in out.why and "without Orthanc's instance list" in out.why
    res = out.results[-1]
    assert res.facts["dicom_instances"] is None
    cat = Catalog.for_region("lab")
    try:
        v = verify.verify(load_key("lab"), engine.DirStore(tmp_path / "store"), cat, res.backup_id)
    finally:
        cat.close()
    assert v.ok and "3 DICOM files parse with pydicom; Orthanc did not answer at backup time" in v.detail


def test_a_broken_chain_starts_a_new_full(lab: Region, orthanc: Server, weed: Weed, tmp_path: Path) -> None:
    from infra.lab.s3 import create_buckets
    create_buckets(weed.client(), {"offsite-backups": (True, True)}, ["offsite-backups"])
    pacs.load_studies(orthanc.client(), StudyPlan(studies=1, series=1, instances=2))
    ov = _ov(tmp_path, orthanc, weed)
    full = engine.run_policy(lab, POLICY, "full", ov).results[-1]
    inc = engine.run_policy(lab, POLICY, "auto", ov).results[-1]
    cat = Catalog.for_region("lab")
    try:
        assert cat.get(inc.backup_id).parent == full.backup_id
        cat.set_state(full.backup_id, "expired")  # the incremental's base is gone
    finally:
        cat.close()
    again = engine.run_policy(lab, POLICY, "auto", ov).results[-1]
    cat = Catalog.for_region("lab")
    try:
        assert again.ok and cat.get(again.backup_id).parent is None  # a new full, every file read
    finally:
        cat.close()
    assert again.facts["files_changed"] == again.facts["files_scanned"]
