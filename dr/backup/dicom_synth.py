"""Synthetic DICOM studies for the lab's PACS: no real patient, realistic enough to back up.

`N studies x M series x K instances` of small CT images (Part-10 files, explicit VR little
endian, 16-bit monochrome pixels) with the tags a PACS indexes (patient, study, series,
instance, dates, modality, geometry). Everything, UIDs and pixels included, follows from the
seed, so two runs with the same seed produce the same files and the same SOPInstanceUIDs.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
INSTITUTION = "Ruijin County Hospital (synthetic)"
_BODY_PARTS = ("CHEST", "HEAD", "ABDOMEN", "PELVIS", "SPINE")


@dataclass(frozen=True)
class StudyPlan:
    """How many images to make; small by default so the lab region stays small."""

    studies: int = 2
    series: int = 2
    instances: int = 3
    rows: int = 32
    columns: int = 32
    seed: int = 0

    @property
    def total(self) -> int:
        return self.studies * self.series * self.instances


@dataclass(frozen=True)
class Instance:
    study_uid: str
    series_uid: str
    sop_uid: str
    data: bytes  # the Part-10 file


def _uid(seed: int, *parts: object) -> str:
    """A deterministic UID under 2.25 (a 128-bit number from a hash of seed and position, as
    PS3.5 B.2 derives one from a UUID); pydicom's generate_uid is random without a prefix."""
    text = "/".join(["hcops-synthetic", str(seed), *map(str, parts)])
    return "2.25." + str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big"))


def _dataset(plan: StudyPlan, rng: random.Random, st: int, se: int, no: int) -> Dataset:
    study_uid, series_uid = _uid(plan.seed, st), _uid(plan.seed, st, se)
    sop_uid = _uid(plan.seed, st, se, no)
    day = date(2026, 1, 1) + timedelta(days=(plan.seed * 31 + st) % 330)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.FrameOfReferenceUID = _uid(plan.seed, st, "frame")
    patient = plan.seed * 1000 + st + 1
    ds.PatientName = f"SYNTHETIC^PATIENT^{patient:05d}"
    ds.PatientID = f"HC{patient:07d}"
    ds.PatientBirthDate = f"{1940 + patient % 60}0{1 + patient % 9}15"
    ds.PatientSex = "MF"[patient % 2]
    ds.PatientIdentityRemoved = "YES"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = day.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = f"{8 + st % 10:02d}{(se * 7) % 60:02d}00"
    ds.ContentTime = f"{8 + st % 10:02d}{(se * 7) % 60:02d}{no % 60:02d}"
    ds.AccessionNumber = f"A{plan.seed % 100:02d}{st:06d}"
    ds.StudyID = str(st + 1)
    ds.ReferringPhysicianName = "SYNTHETIC^REFERRER"
    ds.InstitutionName = INSTITUTION
    ds.Manufacturer = "hcops synthetic"
    ds.Modality = "CT"
    part = _BODY_PARTS[(st + se) % len(_BODY_PARTS)]
    ds.BodyPartExamined = part
    ds.StudyDescription = f"CT {part.lower()} (synthetic)"
    ds.SeriesDescription = f"axial {se + 1}"
    ds.SeriesNumber, ds.InstanceNumber = se + 1, no + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SliceThickness = "2.5"
    ds.PixelSpacing = ["0.75", "0.75"]
    ds.ImagePositionPatient = ["-120", "-120", f"{-2.5 * no:.1f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = plan.rows, plan.columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.PixelData = rng.randbytes(plan.rows * plan.columns * 2)
    return ds


def generate(plan: StudyPlan) -> Iterator[Instance]:
    """Every instance of the plan, study by study, as Part-10 bytes."""
    rng = random.Random(plan.seed)  # noqa: S311 (synthetic pixels, not secrets)
    for st in range(plan.studies):
        for se in range(plan.series):
            for no in range(plan.instances):
                ds = _dataset(plan, rng, st, se, no)
                buf = io.BytesIO()
                ds.save_as(buf, enforce_file_format=True)
                yield Instance(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
                               buf.getvalue())
