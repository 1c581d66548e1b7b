"""Zabbix follows the region model: plan/apply sync, maintenance windows, services, SLAs.

Modules: `client` (connection, retries, version check, call counting), `desired` (model ->
objects), `actual` (API -> objects, a fixed number of bulk reads), `diff` (field-level plan),
`apply` (batched, ordered, stops at the first error), `maintenance`, `sla` (read-back and
error budget), `sync` (plan + apply for the CLI and the benchmark).
"""
