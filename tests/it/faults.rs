//! Nothing lost: faults of hosts, network and processes, restarts from the journal,
//! hostile input, and the seeded convergence test (issue 5).
