"""MariaDB failover: observe the topology, plan a promotion (data), carry it out, rejoin the old primary."""
