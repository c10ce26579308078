//! loadgen, the load generator (being built).

fn main() {}
