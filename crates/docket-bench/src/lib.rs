//! Docket's benchmarks, as a library so that the `docket` binary can run them as `docket bench`.
//!
//! Every figure is printed as one line `BENCH <name> <value> <unit>` on standard output;
//! progress goes to standard error.

pub mod audit;
pub mod checkpoints;
pub mod dashboard;
pub mod e2e;
pub mod log;

use std::time::Duration;

/// One measured figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Dotted name, for example `file.append.c256`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit, for example `commits/s`.
    pub unit: &'static str,
}

impl Figure {
    /// A figure with a name, value and unit.
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Figure {
            name: name.into(),
            value,
            unit,
        }
    }

    /// Prints the figure in the `BENCH` line form and returns it.
    pub fn print(self) -> Self {
        println!("BENCH {} {:.1} {}", self.name, self.value, self.unit);
        self
    }
}

/// Throughput in items per second.
pub(crate) fn rate(items: usize, elapsed: Duration) -> f64 {
    items as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The `q` quantile (0..=1) of microsecond samples; sorts them.
pub(crate) fn quantile_us(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i.min(samples.len() - 1)].as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_right_sample() {
        let mut s: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        assert_eq!(quantile_us(&mut s, 0.5), 51.0);
        assert_eq!(quantile_us(&mut s, 0.99), 99.0);
        assert_eq!(quantile_us(&mut [], 0.5), 0.0);
    }
}
