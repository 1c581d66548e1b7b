"""PACS image trees: Orthanc's storage directory, backed up by the file-tree engine, with the
SOPInstanceUIDs Orthanc held at backup time stored beside it (`dicom-instances.json`).

So a verify proves more than bytes: the restored files parse as DICOM and hold every instance
Orthanc listed before the tree was scanned (instances stored during the scan may add files,
never remove listed ones), and a scratch Orthanc with an empty index ingests them and lists
every one of those instances. The same ingest rebuilds a consistent index on restore (Orthanc's
SQLite index is copied while Orthanc runs, so the restored copy may be mid-transaction).
Loading synthetic studies into a PACS lives here too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_preamble

from dr.backup.dicom_synth import StudyPlan, generate
from dr.backup.envelope import open_frames
from dr.backup.filetree import TreeSource
from dr.backup.keys import RegionKey
from dr.backup.manifest import Manifest, object_key
from dr.backup.orthanc import USER, Orthanc, OrthancRefused, OrthancUnreachable
from dr.backup.scratch_orthanc import scratch_orthanc
from dr.backup.stores import Store
from infra.deploy_pki import read_secret
from inventories.errors import HcopsError
from inventories.model import Region
from inventories.schema import Pacs

INSTANCES_OBJECT = "dicom-instances.json"
# Uncompressed transfer syntaxes, whose pixel data length follows from the image's geometry.
_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def secret_name(service: str) -> str:
    """The secret store entry holding the REST password of the PACS service (the role sets it)."""
    return f"orthanc-{service}"


def pacs_service(region: Region, service: str) -> Pacs:
    svc = region.services.get(service)
    if not isinstance(svc, Pacs):
        pacs = [n for n, s in region.services.items() if isinstance(s, Pacs)]
        raise HcopsError(f"region {region.name} has no pacs service {service!r}",
                         f"use one of: {', '.join(pacs)}" if pacs else "add a `kind: pacs` service to the model")
    return svc


def client_for(region: Region, service: str, *, url: str | None = None, password: str | None = None,
               timeout: float = 30.0) -> Orthanc:
    """The service's REST API at its model address, with the password from the secret store."""
    svc = pacs_service(region, service)
    if url is None:
        url = f"http://{region.service_address(service, svc.host)}:{svc.port}"
    if password is None:
        password = read_secret(region.name, secret_name(service))
        if password is None:
            raise HcopsError(f"no REST password for {service} in the secret store of {region.name}",
                             f"run `hcops deploy --region {region.name}` (the orthanc role generates it)")
    return Orthanc(url, USER, password, timeout=timeout)


@dataclass
class LoadResult:
    stored: int = 0
    studies: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)  # generated, yet not listed by Orthanc afterwards

    @property
    def ok(self) -> bool:
        return not self.missing


def load_studies(client: Orthanc, plan: StudyPlan) -> LoadResult:
    """Store the plan's synthetic studies (POST /instances), then read back what Orthanc holds."""
    res = LoadResult()
    for inst in generate(plan):
        client.store(inst.data)
        res.stored += 1
        res.studies.add(inst.study_uid)
        res.uids.add(inst.sop_uid)
    held = client.sop_instance_uids()
    res.missing = sorted(res.uids - held)
    return res


@dataclass
class PacsSource:
    """The tree source plus the instance list Orthanc gave just before the scan."""

    tree: TreeSource
    uids: set[str] | None  # None: Orthanc did not answer; the tree is backed up all the same
    service: str
    kind: str = field(init=False)
    source: str = field(init=False)
    parent: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.kind, self.source, self.parent = self.tree.kind, self.tree.source, self.tree.parent

    @property
    def facts(self) -> dict[str, object]:
        return {**self.tree.facts, "dicom_instances": None if self.uids is None else len(self.uids)}

    def _instances(self, out: IO[bytes]) -> None:
        uids = None if self.uids is None else sorted(self.uids)
        out.write(json.dumps({"service": self.service, "sop_instance_uids": uids}).encode())

    def objects(self) -> Iterator[tuple[str, Callable[[IO[bytes]], None]]]:
        yield from self.tree.objects()
        yield INSTANCES_OBJECT, self._instances


def is_pacs_backup(m: Manifest) -> bool:
    return any(o.name == INSTANCES_OBJECT for o in m.objects)


def expected_uids(key: RegionKey, store: Store, m: Manifest) -> set[str] | None:
    """The SOPInstanceUIDs a PACS backup recorded; None when Orthanc did not answer at backup time."""
    dk = key.unwrap(m.wrapped_key, m.backup_id)
    with store.open(object_key(m.policy, m.backup_id, INSTANCES_OBJECT)) as fh:
        doc = json.loads(b"".join(open_frames(fh, dk, INSTANCES_OBJECT)))
    uids = doc["sop_instance_uids"]
    return None if uids is None else set(uids)


def _files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*") if p.is_file())


def is_dicom_file(path: Path) -> bool:
    """A DICOM Part-10 file as pydicom recognises one (preamble, then `DICM`), damaged or not;
    Orthanc's own files (its SQLite index) are not."""
    with path.open("rb") as fh:
        try:
            read_preamble(fh, False)
        except InvalidDicomError:
            return False
    return True


def dicom_uids(tree: Path) -> tuple[set[str], int]:
    """SOPInstanceUIDs of the DICOM files under a restored tree, and how many other files (Orthanc's
    index) it holds. A file that starts as DICOM but does not parse is an error."""
    uids: set[str] = set()
    other = 0
    for path in _files(tree):
        if not is_dicom_file(path):
            other += 1
            continue
        try:
            ds = dcmread(path)
        except Exception as exc:  # a damaged DICOM file: pydicom raises many kinds
            raise HcopsError(f"restored file {path.relative_to(tree)} does not parse as DICOM: {exc}",
                             "restore from another copy") from None
        problem = _damage(ds)
        if problem:
            raise HcopsError(f"restored file {path.relative_to(tree)} does not parse as DICOM: {problem}",
                             "restore from another copy")
        uids.add(str(ds.SOPInstanceUID))
    return uids, other


def _damage(ds: Any) -> str:
    """What a leniently read file lacks to be an image: pydicom stops quietly at a truncation."""
    if not ds.get("SOPInstanceUID"):
        return "no SOPInstanceUID (truncated?)"
    if "PixelData" in ds and ds.get("Rows") and ds.get("BitsAllocated") and \
            ds.file_meta.get("TransferSyntaxUID", "") in _NATIVE:
        want = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
                * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.BitsAllocated) // 8)
        if len(ds.PixelData) < want:
            return f"pixel data {len(ds.PixelData)} bytes, {want} expected (truncated)"
    return ""


def require_listed(expected: set[str], got: set[str], where: str) -> None:
    """Every instance Orthanc held at backup time is in `got`; else an error naming the first missing."""
    missing = sorted(expected - got)
    if missing:
        raise HcopsError(f"{len(missing)} of the {len(expected)} instances Orthanc held at backup time are not "
                         f"{where} (e.g. {', '.join(missing[:3])})", "restore from another copy")


def check_restored(tree: Path, expected: set[str] | None) -> str:
    """Every instance Orthanc held at backup time is a parsing DICOM file of the restored tree."""
    got, other = dicom_uids(tree)
    if expected is None:
        return (f"{len(got)} DICOM files parse with pydicom; Orthanc did not answer at backup time, so there "
                f"is no instance list to compare; {other} other files")
    require_listed(expected, got, "in the restored tree")
    extra = len(got - expected)
    return (f"{len(got)} DICOM files parse with pydicom; their SOPInstanceUIDs include all {len(expected)} "
            f"Orthanc held at backup time" + (f" (+{extra} stored during the scan)" if extra else "")
            + f"; {other} other files (Orthanc's index)")


@dataclass
class Ingested:
    files: int = 0  # DICOM files Orthanc stored (or already held: a duplicate file)
    other: int = 0  # not DICOM: the restored copy of Orthanc's index
    held: set[str] = field(default_factory=set)  # SOPInstanceUIDs Orthanc lists afterwards
    seconds: float = 0.0


def ingest(tree: Path, client: Orthanc) -> Ingested:
    """POST every DICOM file of a restored tree to an Orthanc (POST /instances), then list what it
    holds. A file Orthanc refuses, or one it stops answering on, is an error naming the file."""
    res = Ingested()
    t0 = time.monotonic()
    for path in _files(tree):
        if not is_dicom_file(path):
            res.other += 1
            continue
        rel = path.relative_to(tree)
        try:
            client.store(path.read_bytes())
        except OrthancRefused as exc:
            raise HcopsError(f"Orthanc refuses restored file {rel}: HTTP {exc.status}, {exc.reason}",
                             "restore from another copy") from None
        except OrthancUnreachable as exc:
            raise HcopsError(f"Orthanc stopped answering on restored file {rel}: {exc.message}",
                             "a file that stops Orthanc is damaged: restore from another copy") from None
        except HcopsError as exc:
            raise HcopsError(f"Orthanc refuses restored file {rel}: {exc.message}",
                             "restore from another copy") from None
        res.files += 1
    res.held = client.sop_instance_uids()
    res.seconds = time.monotonic() - t0
    return res


def ingest_check(tree: Path, expected: set[str] | None, base: Path) -> str:
    """Orthanc itself reads the restored tree: a scratch Orthanc (config, log and storage under
    `base`) with an empty index ingests every DICOM file, then must list every instance Orthanc
    held at backup time. Catches what parses with pydicom yet Orthanc would not serve."""
    with scratch_orthanc(base) as s:
        res = ingest(tree, s.client())
    done = (f"a scratch Orthanc ingested {res.files} DICOM files in {res.seconds:.1f} s and lists "
            f"{len(res.held)} instances")
    if expected is None:
        return done + " (no instance list from backup time to compare)"
    require_listed(expected, res.held, "listed by a scratch Orthanc that ingested the restored files")
    return done + f", all {len(expected)} held at backup time among them"
