//! What every workload's summary shares: medians per build, the first and last build's runs at
//! a rate (for the ratio row), each build's knee, and the list of failed runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::{Failure, Results, median};

/// The median of `figure` over `runs`.
pub(crate) fn medians<R>(runs: &[R], figure: fn(&R) -> f64) -> f64 {
    median(runs.iter().map(figure).collect())
}

/// The runs of the first and of the last build at one rate, when there are two builds or more:
/// what the ratio row compares.
pub(crate) fn first_and_last<'a, R>(
    names: &[&str],
    by_build: &'a BTreeMap<String, Vec<R>>,
) -> Option<(&'a [R], &'a [R])> {
    if names.len() < 2 {
        return None;
    }
    let first = by_build.get(*names.first()?)?;
    let last = by_build.get(*names.last()?)?;
    Some((first, last))
}

/// The knee of `build`: the highest rate at which every run is `ok` (a rate with a failed run
/// is never one), with the median of `figure` there.
pub(crate) fn knee<R>(
    results: &Results<R>,
    failures: &[Failure],
    build: &str,
    ok: impl Fn(&R) -> bool,
    figure: fn(&R) -> f64,
) -> Option<(f64, f64)> {
    results
        .iter()
        .filter(|(rate, _)| {
            !failures
                .iter()
                .any(|f| &f.rate == *rate && f.build == build)
        })
        .filter_map(|(rate, by_build)| {
            let runs = by_build.get(build)?;
            runs.iter().all(&ok).then(|| {
                (
                    rate.trim().parse::<f64>().unwrap_or(0.0),
                    medians(runs, figure),
                )
            })
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The failed runs, each with its build, rate (in `unit`), run and error; nothing when none
/// failed.
pub(crate) fn write_failures(out: &mut String, failures: &[Failure], unit: &str) {
    if failures.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nFailed runs (left out of the medians; no knee at their rate):"
    );
    for f in failures {
        let rate: f64 = f.rate.trim().parse().unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "- {} at {rate} {unit}, run {}: {}",
            f.build, f.run, f.error
        );
    }
}
