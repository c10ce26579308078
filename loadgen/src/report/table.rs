//! The human-readable summary printed at the end of a run.

use std::fmt::Write as _;

use super::Report;
use crate::stats::LatencySummary;

fn latency_row(out: &mut String, name: &str, l: &LatencySummary) {
    if l.count == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "  {name:<22} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}   ({} samples)",
        l.p50, l.p90, l.p99, l.p999, l.max, l.count
    );
}

fn bytes(b: f64) -> String {
    if b.abs() >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b.abs() >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// Renders the report as aligned text.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    if r.room_size == 0 {
        // connect-storm and idle: no messages.
        let _ = writeln!(
            out,
            "loadgen {} (run {}): {} users, {} connections, {:.1}s",
            r.scenario, r.run_id, r.users, r.connections.target, r.duration_s
        );
        connections_and_resources(&mut out, r);
        return out;
    }
    let _ = writeln!(
        out,
        "loadgen {} (run {}): {} users, {} rooms of {}, {} connections, target {} ops/s, {} B, \
         {:.0}s measured after {:.0}s warmup",
        r.scenario,
        r.run_id,
        r.users,
        r.rooms,
        r.room_size,
        r.connections.target,
        r.target_rate,
        r.payload_bytes,
        r.duration_s,
        r.warmup_s
    );
    let _ = writeln!(out, "\nthroughput (measured window)");
    let _ = writeln!(out, "  offered    {:>12.1} /s", r.offered_per_sec);
    let _ = writeln!(out, "  acked      {:>12.1} /s", r.acked_per_sec);
    let _ = writeln!(out, "  delivered  {:>12.1} /s", r.delivered_per_sec);

    let _ = writeln!(out, "\ncorrectness (whole run)");
    let _ = writeln!(
        out,
        "  offered {}  acked {}  expected {}  delivered {}",
        r.offered, r.acked, r.expected, r.delivered
    );
    let _ = writeln!(
        out,
        "  lost {}  duplicated {}  reordered {}  unexpected {}  failed sends {}  unanswered {}",
        r.lost, r.duplicated, r.reordered, r.unexpected, r.failed_sends, r.unanswered
    );
    if r.delivered_unacked > 0 || r.foreign > 0 {
        let _ = writeln!(
            out,
            "  delivered without ack {}  foreign messages {}",
            r.delivered_unacked, r.foreign
        );
    }
    let _ = writeln!(out, "  errors {}", r.errors);
    for (code, n) in &r.errors_by_code {
        let _ = writeln!(out, "    {code:<20} {n}");
    }

    let _ = writeln!(
        out,
        "\nlatency (ms)                 p50       p90       p99     p99.9       max"
    );
    latency_row(&mut out, "delivery (per recipient)", &r.latency_ms);
    latency_row(&mut out, "last recipient", &r.last_recipient_latency_ms);
    latency_row(&mut out, "send acknowledged", &r.ack_latency_ms);
    for (op, l) in &r.requests {
        latency_row(&mut out, op, l);
    }
    connections_and_resources(&mut out, r);
    out
}

fn connections_and_resources(out: &mut String, r: &Report) {
    if r.room_size == 0 {
        let _ = writeln!(out, "\nerrors {}", r.errors);
        for (code, n) in &r.errors_by_code {
            let _ = writeln!(out, "  {code:<20} {n}");
        }
        let _ = writeln!(
            out,
            "\nlatency (ms)                 p50       p90       p99     p99.9       max"
        );
    }
    latency_row(out, "connect (due → ready)", &r.connections.connect_ms);
    latency_row(out, "handshake + hello", &r.connections.handshake_ms);
    latency_row(out, "authentication", &r.connections.auth_ms);

    let c = &r.connections;
    let _ = writeln!(
        out,
        "\nconnections  {} of {} established ({} in 0-RTT), {} failed, {} reconnects, {:.1} established/s",
        c.established, c.target, c.zero_rtt, c.failed, c.reconnects, c.per_sec
    );
    match &r.loadgen.cpu {
        Some(cpu) => {
            let _ = writeln!(
                out,
                "loadgen      {:.1} CPU s over {:.1} s = {:.2} cores busy of {} threads{}",
                cpu.cpu_seconds,
                cpu.wall_seconds,
                cpu.cores,
                r.loadgen.threads,
                r.loadgen
                    .rss_bytes
                    .map(|b| format!(", RSS {}", bytes(b as f64)))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(out, "loadgen      CPU use unknown (no /proc)");
        }
    }
    if let Some(s) = &r.server {
        let conns = s.connected.connections_open.unwrap_or(f64::NAN);
        let _ = write!(out, "server       {conns:.0} connections open");
        if let (Some(before), Some(connected)) = (s.before.rss_bytes, s.connected.rss_bytes) {
            let _ = write!(
                out,
                ", RSS {} before, {} connected",
                bytes(before),
                bytes(connected)
            );
        }
        if let Some(after) = s.after.rss_bytes {
            let _ = write!(out, ", {} at the end", bytes(after));
        }
        if let Some(events) = s.events_sent.filter(|e| *e > 0.0) {
            let _ = write!(out, "; {events:.0} events sent");
        }
        if let Some(commands) = s.store_commands.filter(|c| *c > 0.0) {
            let _ = write!(out, "; {commands:.0} store commands");
        }
        if let Some(per) = s.rss_per_connection_bytes {
            let _ = write!(
                out,
                "\n             RSS growth per connection {} ({})",
                bytes(per),
                s.rss_per_connection_basis
            );
        }
        let _ = writeln!(out);
        if !s.requests_during_load.is_empty() {
            let list: Vec<String> = s
                .requests_during_load
                .iter()
                .map(|(kind, n)| format!("{kind} {n:.0}"))
                .collect();
            let _ = writeln!(
                out,
                "             requests during the load: {}",
                list.join(", ")
            );
        }
    }
    let _ = writeln!(
        out,
        "\nresult: {}",
        if r.ok {
            "OK (no loss, duplicate, reordering or error)"
        } else {
            "NOT OK (see errors and correctness)"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messaging_runs_show_throughput_correctness_and_latency() {
        let config =
            crate::config::RunConfig::from_flags(["--server", "h:1", "--insecure"]).expect("valid");
        let mut r = Report::empty(&config, 7, 10);
        r.delivered_per_sec = 1234.5;
        r.lost = 3;
        r.errors = 1;
        r.errors_by_code.insert("RATE_LIMITED".into(), 1);
        r.latency_ms = crate::stats::LatencySummary {
            count: 10,
            p50: 1.5,
            p90: 2.0,
            p99: 3.0,
            p999: 4.0,
            max: 5.0,
            mean: 1.7,
        };
        r.judge();
        let text = render(&r);
        for needle in [
            "delivered        1234.5 /s",
            "lost 3",
            "RATE_LIMITED",
            "1.50",
            "NOT OK",
        ] {
            assert!(text.contains(needle), "{needle} in:\n{text}");
        }
    }

    #[test]
    fn connection_runs_leave_out_the_message_sections() {
        let config = crate::config::RunConfig::from_flags([
            "--server",
            "h:1",
            "--insecure",
            "--scenario",
            "idle",
        ])
        .expect("valid");
        let mut r = Report::empty(&config, 7, 0);
        r.judge();
        let text = render(&r);
        assert!(!text.contains("throughput"), "{text}");
        assert!(text.contains("connections  0 of 100 established"), "{text}");
        assert!(text.contains("result: OK"), "{text}");
    }
}
