//! The machine description printed with every result: CPU model, logical CPUs, memory, kernel and toolchain.

use std::fmt;
use std::process::Command;

/// What the figures were measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub cpu_model: String,
    /// Logical CPUs listed in /proc/cpuinfo.
    pub cpuinfo_processors: usize,
    /// `nproc`: CPUs this process may run on.
    pub nproc: usize,
    pub mem_total: String,
    pub kernel: String,
    pub rustc: String,
}

impl Machine {
    /// Reads /proc and asks `rustc --version`; anything unreadable is reported as `unknown`.
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let (cpu_model, cpuinfo_processors) = parse_cpuinfo(&cpuinfo);
        Machine {
            cpu_model,
            cpuinfo_processors,
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            mem_total: parse_mem_total(&meminfo),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned()),
            rustc: Command::new("rustc")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map_or_else(|| "unknown".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} logical CPUs in /proc/cpuinfo, nproc {}), {} RAM, Linux {}, {}",
            self.cpu_model, self.cpuinfo_processors, self.nproc, self.mem_total, self.kernel, self.rustc
        )
    }
}

/// The first `model name` and the number of `processor` entries.
fn parse_cpuinfo(text: &str) -> (String, usize) {
    let field = |line: &str, name: &str| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_owned())
    };
    let model = text.lines().find_map(|l| field(l, "model name")).unwrap_or_else(|| "unknown CPU".to_owned());
    let processors = text.lines().filter(|l| field(l, "processor").is_some()).count();
    (model, processors)
}

/// `MemTotal` in GiB, one decimal.
fn parse_mem_total(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(|| "unknown".to_owned(), |kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_gives_the_first_model_and_counts_processors() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpuinfo(text), ("AMD EPYC 7B13".to_owned(), 2));
        assert_eq!(parse_cpuinfo(""), ("unknown CPU".to_owned(), 0));
    }

    #[test]
    fn meminfo_total_is_rendered_in_gib() {
        assert_eq!(parse_mem_total("MemTotal:       24684544 kB\nMemFree: 1 kB\n"), "23.5 GiB");
        assert_eq!(parse_mem_total("nothing"), "unknown");
    }
}
