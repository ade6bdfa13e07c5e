"""Several cloud workers on one PostgreSQL: partition leases, fencing, membership, balance."""
