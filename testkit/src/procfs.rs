//! What `/proc` says about a process.

use std::fs;
use std::time::Duration;

/// CPU time used by every thread of process `pid`, from the scheduler's
/// nanosecond counters (`/proc/PID/task/*/schedstat`); zero once it is gone.
pub fn cpu_time(pid: u32) -> Duration {
    threads(pid).into_iter().map(|(_, cpu)| cpu).sum()
}

/// Each thread of process `pid`, by name, with the CPU time it has used.
pub fn threads(pid: u32) -> Vec<(String, Duration)> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = fs::read_to_string(path.join("comm")).ok()?.trim().to_owned();
            let stat = fs::read_to_string(path.join("schedstat")).ok()?;
            let nanos = stat.split_whitespace().next()?.parse().ok()?;
            Some((name, Duration::from_nanos(nanos)))
        })
        .collect()
}

/// CPU time every thread of process `pid` has spent in the kernel, from
/// `/proc/PID/stat`: clock ticks, so 10 ms resolution at the usual 100 Hz.
///
/// On loopback this includes the client's share of each packet's journey:
/// a send runs the receiving socket's path, and wakes its reader, in the
/// sender's time.
pub fn kernel_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name, in parentheses, may hold spaces: count from after it.
    // `stime` is the 15th field; the 3rd is the first after the name.
    let ticks = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(15 - 3)?.parse::<u64>().ok())
        .unwrap_or(0);
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
}

/// Resident memory of process `pid`, in KiB; zero once it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// How many descriptors process `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}
