"""Availability against the region's SLOs: measured (the canary's probe history beside Zabbix's
SLA), burn rates as the SRE workbook defines them, and availability by design from the topology.

Engines return result objects; `cli/availability.py` renders them and picks the exit code.
"""
