//! rbatch: coalesce an event stream into batches of paths (not yet written).
