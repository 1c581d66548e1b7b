"""S3Bucket: a bucket on the public cloud's S3-compatible storage, as a Pulumi dynamic resource.

Public clouds sell S3-compatible object storage that no OpenStack resource manages, so hcops
drives it through boto3: versioning, a lifecycle derived from the backup retention, default
encryption, and object lock where the store supports it (backups that ransomware cannot
delete). Keys are read at run time from an ini file (`aws_access_key_id`,
`aws_secret_access_key`), so they never enter the stack's state.

A bucket holding objects is never deleted: `delete` refuses and says why (backups and images
are kept unless someone empties the bucket on purpose).
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pulumi
from botocore.config import Config
from botocore.exceptions import ClientError
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KIND = "hcops:s3-bucket"
# Properties whose change is applied in place; the others replace the bucket.
MUTABLE = ("versioning", "lifecycle", "encryption", "objectLock", "objectLockDays", "tags")
IDENTITY = ("bucket", "endpoint", "regionName")
LIFECYCLE_RULE_ID = "hcops-retention"
# Error codes by which S3-compatible stores say they lack object lock.
LOCK_UNSUPPORTED = {"NotImplemented", "InvalidRequest", "InvalidBucketState",
                    "ObjectLockConfigurationNotFoundError", "MalformedXML"}


class BucketError(Exception):
    """A bucket operation that cannot proceed, with what to do about it."""


def read_credentials(path: str) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise BucketError(f"S3 credentials file {path} does not exist or cannot be read; "
                          "write aws_access_key_id and aws_secret_access_key into it (mode 0600)")
    for section in [parser.default_section, *parser.sections()]:
        sect = parser[section]
        if sect.get("aws_access_key_id") and sect.get("aws_secret_access_key"):
            return sect["aws_access_key_id"], sect["aws_secret_access_key"]
    raise BucketError(f"{path} has no aws_access_key_id/aws_secret_access_key pair")


def client(props: dict[str, Any]) -> S3Client:
    key_id, secret = read_credentials(str(props["credentialsFile"]))
    s3: S3Client = boto3.client(
        "s3", endpoint_url=str(props["endpoint"]), region_name=str(props.get("regionName") or "us-east-1"),
        aws_access_key_id=key_id, aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                      connect_timeout=10, read_timeout=30))
    return s3


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def lifecycle_rules(lifecycle: dict[str, Any]) -> list[dict[str, Any]]:
    rule: dict[str, Any] = {"ID": LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
                            "AbortIncompleteMultipartUpload": {
                                "DaysAfterInitiation": int(lifecycle.get("abortMultipartDays") or 7)}}
    if lifecycle.get("expirationDays"):
        rule["Expiration"] = {"Days": int(lifecycle["expirationDays"])}
    if lifecycle.get("noncurrentDays"):
        rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(lifecycle["noncurrentDays"])}
    return [rule]


def _apply(s3: S3Client, props: dict[str, Any], lock_applied: bool) -> bool:
    """Bring versioning, encryption, lifecycle and object lock to `props`; True if lock is on."""
    bucket = str(props["bucket"])
    versioned = bool(props.get("versioning")) or bool(props.get("objectLock"))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
        "Status": "Enabled" if versioned else "Suspended"})
    if props.get("encryption"):
        sse: Any = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": str(props["encryption"])}}]}
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=sse)
    else:
        s3.delete_bucket_encryption(Bucket=bucket)
    if props.get("lifecycle"):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
            "Rules": lifecycle_rules(dict(props["lifecycle"]))})  # type: ignore[typeddict-item]
    else:
        s3.delete_bucket_lifecycle(Bucket=bucket)
    if props.get("objectLock"):
        try:
            s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": int(props.get("objectLockDays") or 1)}}})
            lock_applied = True
        except ClientError as exc:
            if _code(exc) not in LOCK_UNSUPPORTED:
                raise
            lock_applied = False
    elif lock_applied:
        # Object lock cannot be switched off on a bucket; drop the default retention instead.
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    if props.get("tags"):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
            {"Key": str(k), "Value": str(v)} for k, v in sorted(dict(props["tags"]).items())]})
    return lock_applied


def _outs(props: dict[str, Any], lock_applied: bool) -> dict[str, Any]:
    return {**props, "objectLockApplied": lock_applied}


class S3BucketProvider(ResourceProvider):
    """Create/diff/update/read/delete of one bucket through boto3."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        s3 = client(props)
        bucket = str(props["bucket"])
        args: dict[str, Any] = {"Bucket": bucket}
        region = str(props.get("regionName") or "us-east-1")
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        lock = False
        if props.get("objectLock"):
            try:
                s3.create_bucket(**args, ObjectLockEnabledForBucket=True)
                lock = True
            except ClientError as exc:
                if _code(exc) not in LOCK_UNSUPPORTED:
                    raise
                s3.create_bucket(**args)
        else:
            s3.create_bucket(**args)
        try:
            lock = _apply(s3, props, lock)
        except Exception:
            s3.delete_bucket(Bucket=bucket)  # create is transactional: leave nothing half-made
            raise
        return CreateResult(bucket, _outs(props, lock))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in (*IDENTITY, *MUTABLE) if olds.get(k) != news.get(k)]
        replaces = [k for k in IDENTITY if k in changed]
        return DiffResult(changes=bool(changed), replaces=replaces,
                          stables=[k for k in IDENTITY if k not in changed], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        s3 = client(news)
        lock = _apply(s3, news, bool(olds.get("objectLockApplied")))
        return UpdateResult(_outs(news, lock))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """What the store really has, in the resource's own terms (for `refresh`)."""
        s3 = client({**props, "bucket": id_})
        live = dict(props, bucket=id_)
        status = s3.get_bucket_versioning(Bucket=id_).get("Status")
        live["versioning"] = status == "Enabled"
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=id_).get("Rules", [])
        except ClientError as exc:
            if _code(exc) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        live["lifecycle"] = _lifecycle_from(rules)
        try:
            enc = s3.get_bucket_encryption(Bucket=id_)["ServerSideEncryptionConfiguration"]["Rules"]
            live["encryption"] = enc[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if enc else None
        except ClientError as exc:
            if _code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            live["encryption"] = None
        try:
            lock_cfg = s3.get_object_lock_configuration(Bucket=id_)["ObjectLockConfiguration"]
            applied = lock_cfg.get("ObjectLockEnabled") == "Enabled"
            days = lock_cfg.get("Rule", {}).get("DefaultRetention", {}).get("Days")
        except ClientError as exc:
            if _code(exc) not in LOCK_UNSUPPORTED:
                raise
            applied, days = False, None
        live["objectLockApplied"] = applied
        live["objectLock"] = applied and days is not None
        live["objectLockDays"] = days if days is not None else props.get("objectLockDays")
        return ReadResult(id_, live)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        s3 = client(props)
        listing = s3.list_object_versions(Bucket=id_, MaxKeys=1)
        if listing.get("Versions") or listing.get("DeleteMarkers"):
            raise BucketError(f"bucket {id_} still holds objects; hcops does not delete backups or images. "
                              "Empty it on purpose (all versions) and run destroy again")
        s3.delete_bucket(Bucket=id_)


def _lifecycle_from(rules: list[Any]) -> dict[str, Any] | None:
    for rule in rules:
        if rule.get("ID") == LIFECYCLE_RULE_ID and rule.get("Status") == "Enabled":
            return {
                "expirationDays": rule.get("Expiration", {}).get("Days"),
                "noncurrentDays": rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"),
                "abortMultipartDays": rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
            }
    return None


def bucket_props(*, bucket: str, endpoint: str, region_name: str, credentials_file: Path | str,
                 versioning: bool, lifecycle: dict[str, Any] | None, encryption: str | None,
                 object_lock: bool, object_lock_days: int, tags: dict[str, str]) -> dict[str, Any]:
    """The resource's properties in the camelCase form stored in state and seen by policies."""
    return {"hcopsKind": KIND, "bucket": bucket, "endpoint": endpoint, "regionName": region_name,
            "credentialsFile": str(credentials_file), "versioning": versioning, "lifecycle": lifecycle,
            "encryption": encryption, "objectLock": object_lock, "objectLockDays": object_lock_days,
            "tags": tags}


class S3Bucket(pulumi.dynamic.Resource):
    """One bucket; properties as in `bucket_props`, plus `objectLockApplied` once created."""

    bucket: pulumi.Output[str]
    objectLockApplied: pulumi.Output[bool]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(S3BucketProvider(), name, {**props, "objectLockApplied": None}, opts)
