//! loadgen's own resource use, from `/proc/self` (Linux): CPU time, so that a saturated load
//! generator is visible in the report, and resident memory. The workspace forbids unsafe code,
//! so `getrusage` is not an option; `/proc/self/stat` has the same numbers. The same reading
//! works for any process ([`process_cpu_time`]), which benchmark drivers use for servers.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Clock ticks per second of `/proc/<pid>/stat` times. Linux fixes USER_HZ at 100 for user
/// space on every architecture it supports.
const USER_HZ: f64 = 100.0;

/// CPU time used by this process so far (user + system), or `None` where `/proc` is missing.
pub fn cpu_time() -> Option<Duration> {
    cpu_time_of("/proc/self/stat")
}

/// CPU time used so far by process `pid` (user + system, plus that of its children it has
/// waited for), or `None` when it is gone.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 1..)?;
    // Fields 14-17: utime, stime, cutime, cstime (the 12th to 15th after field 2).
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Some(Duration::from_secs_f64(ticks as f64 / USER_HZ))
}

fn cpu_time_of(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_secs_f64(ticks as f64 / USER_HZ))
}

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in ticks.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // Field 2 is the command in parentheses and may contain spaces: count after the last ')'.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after.split_whitespace();
    // `after` starts at field 3 (state); utime is field 14, i.e. the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of this process in bytes (`VmRSS` of `/proc/self/status`).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(kib * 1024)
}

/// CPU use between two points in time.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    start_cpu: Option<Duration>,
    start: Instant,
    start_unix_ms: u64,
}

/// CPU used over an interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CpuUse {
    /// CPU seconds (user + system).
    pub cpu_seconds: f64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Average cores busy (cpu / wall); compare with the number of cores.
    pub cores: f64,
    /// When the interval began, ms since the Unix epoch (to line other processes' CPU up with
    /// it).
    pub started_unix_ms: u64,
    /// When it ended, ms since the Unix epoch.
    pub ended_unix_ms: u64,
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn start() -> Self {
        Self {
            start_cpu: cpu_time(),
            start: Instant::now(),
            start_unix_ms: unix_ms(),
        }
    }

    /// CPU used since [`CpuMeter::start`]; `None` without `/proc`.
    pub fn read(&self) -> Option<CpuUse> {
        let cpu = cpu_time()?.checked_sub(self.start_cpu?)?;
        let wall = self.start.elapsed().as_secs_f64();
        Some(CpuUse {
            cpu_seconds: cpu.as_secs_f64(),
            wall_seconds: wall,
            cores: if wall > 0.0 {
                cpu.as_secs_f64() / wall
            } else {
                0.0
            },
            started_unix_ms: self.start_unix_ms,
            ended_unix_ms: unix_ms(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        // A command name with spaces and parentheses must not shift the fields.
        let line = "4242 (load gen) (x)) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(line), Some(325));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_uses_cpu_and_memory() {
        let meter = CpuMeter::start();
        // Burn a little CPU so the tick counter moves (10 ms per tick).
        let mut x = 0u64;
        let until = Instant::now() + Duration::from_millis(60);
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert_ne!(x, 1);
        let used = meter.read().expect("/proc/self/stat on Linux");
        assert!(used.cpu_seconds > 0.0, "{used:?}");
        assert!(used.cores > 0.0 && used.cores < 64.0, "{used:?}");
        assert!(resident_bytes().is_some_and(|b| b > 1024 * 1024));
        let own = process_cpu_time(std::process::id()).expect("own stat");
        assert!(own >= Duration::from_secs_f64(used.cpu_seconds));
        assert!(used.ended_unix_ms >= used.started_unix_ms + 60);
    }
}
