"""The lab's PACS policy end to end against a real Orthanc on loopback and a real SeaweedFS:
synthetic studies stored over REST, the storage tree backed up (full, then incremental) to a
local store and offsite, verified from offsite by restore (sha256, DICOM parse, SOPInstanceUIDs,
ingest into a scratch Orthanc), restored through the CLI as is and with a rebuilt index; and bad
input: unknown policy, wrong kind, Orthanc refusing auth or a file, --reindex of other backups."""

from __future__ import annotations

import base64
import io
import json
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from dr.backup import engine, pacs, restore, verify
from dr.backup.catalog import Catalog
from dr.backup.dicom_synth import StudyPlan, generate
from dr.backup.keys import load_key
from dr.backup.manifest import Manifest
from dr.backup.orthanc import USER
from dr.backup.scratch_orthanc import ScratchOrthanc, scratch_orthanc
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


def _served_files(srv: ScratchOrthanc) -> dict[str, bytes]:
    """Every instance file an Orthanc serves (GET /instances/{id}/file), by SOPInstanceUID."""
    auth = "Basic " + base64.b64encode(f"{USER}:{srv.password}".encode()).decode()

    def get(path: str) -> bytes:
        req = urllib.request.Request(srv.url + path, headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=30) as r:
            return bytes(r.read())

    files = [get(f"/instances/{i}/file") for i in json.loads(get("/instances"))]
    return {str(dcmread(io.BytesIO(f)).SOPInstanceUID): f for f in files}


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
    # Orthanc itself reads the restored files: a scratch one with an empty index ingests them all
    assert "a scratch Orthanc ingested 16 DICOM files in " in got["detail"]
    assert "lists 16 instances, all 16 held at backup time among them" in got["detail"]
    print("verify:", got["detail"])

    target = tmp_path / "restored"
    r = hcops("backup", "restore", inc.backup_id, "--region", "lab", "--target-dir", str(target),
              "--local-dir", str(tmp_path / "store"))
    assert r.code == 0, r.stderr
    uids, other = pacs.dicom_uids(target)
    assert uids == client.sop_instance_uids() and len(uids) == 16 and other >= 1  # + Orthanc's index
    print(f"restore: {len(uids)} DICOM instances, SOPInstanceUIDs equal Orthanc's; {other} other file(s)")

    # --reindex: the images with an index rebuilt by Orthanc (the copied one may be mid-transaction)
    reindexed = tmp_path / "reindexed"
    r = hcops("backup", "restore", inc.backup_id, "--region", "lab", "--target-dir", str(reindexed),
              "--local-dir", str(tmp_path / "store"), "--reindex")
    assert r.code == 0, r.stderr
    said = " ".join(r.stdout.split())  # rich wraps long lines
    assert f"re-indexed 16 instances into a fresh Orthanc index in {reindexed} (" in said, said
    assert (reindexed / "index").is_file() and not list(tmp_path.glob(".reindexed-reindex-*"))  # work dir gone
    print("restore --reindex:", said)
    with scratch_orthanc(tmp_path / "check", reindexed) as fresh:  # Orthanc serves the directory as it is
        assert fresh.client().sop_instance_uids() == uids
        served = _served_files(fresh)
    originals = {i.sop_uid: i.data for p in (StudyPlan(studies=2, series=2, instances=3, seed=1),
                                             StudyPlan(studies=1, series=1, instances=4, seed=2)) for i in generate(p)}
    assert served == originals  # every image served byte for byte as first stored
    r = hcops("backup", "restore", inc.backup_id, "--region", "lab", "--target-dir", str(reindexed),
              "--local-dir", str(tmp_path / "store"), "--reindex")
    assert r.code == 1 and "is not empty" in r.stderr and "Traceback" not in r.stderr


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


def test_ingest_check_names_a_refused_file_and_a_missing_instance(tmp_path: Path, orthanc: Server) -> None:
    pacs.load_studies(orthanc.client(), StudyPlan(studies=1, series=1, instances=3))
    uids = orthanc.client().sop_instance_uids()
    detail = pacs.ingest_check(orthanc.storage, uids, tmp_path / "o1")
    assert "a scratch Orthanc ingested 3 DICOM files" in detail and "all 3 held at backup time among them" in detail
    with pytest.raises(HcopsError, match=r"1 of the 4 instances Orthanc held at backup time are not listed by a "
                       r"scratch Orthanc that ingested the restored files \(e\.g\. 2\.25\.1\)") as info:
        pacs.ingest_check(orthanc.storage, uids | {"2.25.1"}, tmp_path / "o2")
    assert info.value.hint == "restore from another copy"

    # a file pydicom reads but Orthanc refuses: an image without its StudyInstanceUID
    tree = tmp_path / "tree"
    shutil.copytree(orthanc.storage, tree)
    one = next(p for p in sorted(tree.rglob("*")) if p.is_file() and pacs.is_dicom_file(p))
    ds = dcmread(one)
    del ds.StudyInstanceUID
    ds.save_as(one)
    assert "include all 3 Orthanc held" in pacs.check_restored(tree, uids)  # pydicom alone sees nothing wrong
    rel = one.relative_to(tree)
    with pytest.raises(HcopsError, match=f"Orthanc refuses restored file {rel}: HTTP 4") as info:
        pacs.ingest_check(tree, uids, tmp_path / "o3")
    assert info.value.hint == "restore from another copy"


def test_reindex_is_for_whole_pacs_backups(lab: Region, hcops: Callable[..., CliResult], tmp_path: Path) -> None:
    cat = Catalog.for_region("lab")
    at = "2026-01-01T01:30:00+00:00"
    m = Manifest(backup_id="appdb-nightly.full.00", region="lab", policy="appdb-nightly", kind="full",
                 source="appdb", started_at=at, finished_at=at)
    cat.record(m, "good")
    cat.close()
    target = tmp_path / "t"
    r = hcops("backup", "restore", m.backup_id, "--region", "lab", "--target-dir", str(target), "--reindex")
    assert r.code == 1 and "backup appdb-nightly.full.00 is not a PACS backup (full backup" in r.stderr, r.stderr
    assert "restore it without --reindex" in r.stderr and "Traceback" not in r.stderr and not target.exists()
    r = hcops("backup", "restore", m.backup_id, "--region", "lab", "--target-dir", str(target), "--reindex",
              "--path", "00/x")
    assert r.code == 64 and "--reindex rebuilds the index of the whole PACS tree" in r.stderr
    assert "Traceback" not in r.stderr and not target.exists()


def test_scratch_orthanc_without_the_binary_says_what_to_install(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no Orthanc on it
    with pytest.raises(HcopsError, match="Orthanc is not installed on this machine") as info, \
            scratch_orthanc(tmp_path / "o"):
        pass
    assert info.value.hint == "install Debian's orthanc package (./run test does)"
    assert not (tmp_path / "o").exists()


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
    assert "a scratch Orthanc ingested 3 DICOM files" in v.detail and "lists 3 instances (no instance list" in v.detail


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
