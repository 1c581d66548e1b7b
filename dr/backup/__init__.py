"""Backups of a region's data: sources (MariaDB, file trees, Oracle RMAN), the pipeline
(zstd, AES-256-GCM envelope, sha256, signed manifest), stores (local, S3), catalog, retention,
restore and verify. Engines return result objects; `cli/backup.py` renders them."""
