"""Level-3 classified protection (GB/T 22239-2019) evidence: clause rows checked on every host."""
