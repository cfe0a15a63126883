//! rpush: one rsync per batch per host, hosts in parallel (not yet written).
