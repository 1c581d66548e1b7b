"""ObjectStorage: a model object_storage service's buckets on the cloud side that holds them.

On a public-cloud site the buckets live in the cloud's S3-compatible store (`S3Bucket`, boto3
dynamic resource); on a private OpenStack site they are Swift containers. Lifecycle comes from
the backup retention: a backup bucket keeps objects as long as the longest retention writing
to it (plus a day of grace), deleted or overwritten versions for `NONCURRENT_DAYS`.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_openstack as openstack

from infra.openstack.config import ProgramConfig, ProgramSettingsError
from infra.openstack.s3bucket import S3Bucket, bucket_props
from infra.openstack.topology import bucket_retention, retention_days, side_of
from inventories.model import Region
from inventories.schema import Bucket, ObjectStorage

NONCURRENT_DAYS = {"backup": 30, "images": 90, "app": 30}
DEFAULT_LOCK_DAYS = 7


def bucket_lifecycle(region: Region, name: str, spec: Bucket) -> dict[str, Any]:
    retention = bucket_retention(region, name)
    expiration = retention_days(retention) + 1 if spec.purpose == "backup" and retention else None
    return {"expirationDays": expiration, "noncurrentDays": NONCURRENT_DAYS[spec.purpose], "abortMultipartDays": 7}


def lock_days(region: Region, name: str) -> int:
    """Default object-lock retention: the daily backups' horizon, so the newest copies cannot be
    deleted (by ransomware or by mistake) before newer ones exist."""
    retention = bucket_retention(region, name)
    return max(1, retention.daily) if retention and retention.daily else DEFAULT_LOCK_DAYS


def real_bucket_name(cfg: ProgramConfig, name: str) -> str:
    return f"{cfg.bucket_prefix}{name}"


class ObjectStorageBuckets(pulumi.ComponentResource):
    """Buckets of one object_storage service, as S3 buckets or Swift containers."""

    buckets: dict[str, S3Bucket]
    containers: dict[str, openstack.objectstorage.Container]

    def __init__(self, name: str, region: Region, service: str, cfg: ProgramConfig,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hcops:openstack:ObjectStorage", name, None, opts)
        svc = region.services[service]
        assert isinstance(svc, ObjectStorage)
        self.buckets, self.containers = {}, {}
        public = side_of(region.sites[svc.site]) == "public"
        for bucket, spec in svc.buckets.items():
            real = real_bucket_name(cfg, bucket)
            tags = {"hcops-region": region.name, "hcops-service": service, "hcops-purpose": spec.purpose}
            if public:
                if cfg.s3 is None:
                    raise ProgramSettingsError(f"bucket {bucket} needs the public cloud's S3 endpoint",
                                               "set hcops:s3.endpoint (or HCOPS_S3_ENDPOINT)")
                self.buckets[bucket] = S3Bucket(f"{service}-{bucket}", bucket_props(
                    bucket=real, endpoint=cfg.s3.endpoint, region_name=cfg.s3.region_name,
                    credentials_file=cfg.s3.credentials_file, versioning=spec.versioning,
                    lifecycle=bucket_lifecycle(region, bucket, spec), encryption="AES256",
                    object_lock=spec.object_lock, object_lock_days=lock_days(region, bucket), tags=tags),
                    opts=pulumi.ResourceOptions(parent=self))
            else:
                self.containers[bucket] = openstack.objectstorage.Container(
                    f"{service}-{bucket}", name=real, versioning=spec.versioning,
                    metadata={k.replace("hcops-", "hcops_"): v for k, v in tags.items()},
                    opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

    def names(self, cfg: ProgramConfig) -> dict[str, str]:
        return {b: real_bucket_name(cfg, b) for b in [*self.buckets, *self.containers]}
