"""Failover drills as Chaos Toolkit experiments: catalog, probes, actions, measurement, reports, store."""
