//! SVG plots, written by hand (a few lines of markup do not justify a plotting crate):
//! `latency_over_time.svg` (p50, p99 and max delivery latency per second of due time, log
//! scale), `throughput_over_time.svg` (acknowledgements and deliveries per second) and
//! `latency_histogram.svg` (delivery latencies in logarithmic buckets).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Report;
use crate::error::LoadgenError;
use crate::stats::LatencyHistogram;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 160.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"];

/// An axis: a value range and whether it is logarithmic.
#[derive(Debug, Clone, Copy)]
struct Axis {
    min: f64,
    max: f64,
    log: bool,
}

impl Axis {
    fn linear(min: f64, max: f64) -> Self {
        let max = if max > min { max } else { min + 1.0 };
        Self {
            min,
            max,
            log: false,
        }
    }

    /// A log axis spanning whole decades around the data.
    fn log(min: f64, max: f64) -> Self {
        let lo = min.max(1e-3).log10().floor();
        let hi = max.max(min.max(1e-3) * 10.0).log10().ceil();
        Self {
            min: 10f64.powf(lo),
            max: 10f64.powf(hi.max(lo + 1.0)),
            log: true,
        }
    }

    /// Position of `v` in 0..=1.
    fn frac(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.max(self.min).log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (v - self.min) / (self.max - self.min)
        };
        f.clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let lo = self.min.log10().round() as i32;
            let hi = self.max.log10().round() as i32;
            return (lo..=hi).map(|e| 10f64.powi(e)).collect();
        }
        let span = self.max - self.min;
        let raw = span / 6.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * magnitude)
            .find(|s| span / s <= 7.0)
            .unwrap_or(10.0 * magnitude);
        let mut ticks = Vec::new();
        let mut t = (self.min / step).ceil() * step;
        while t <= self.max + step * 1e-9 {
            ticks.push(t);
            t += step;
        }
        ticks
    }
}

fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.abs() >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A chart frame: axes, ticks, labels; series are added as SVG fragments.
struct Chart {
    x: Axis,
    y: Axis,
    body: String,
    legend: Vec<(String, &'static str)>,
}

impl Chart {
    fn new(title: &str, x: Axis, x_label: &str, y: Axis, y_label: &str) -> Self {
        let mut body = String::new();
        let _ = write!(
            body,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>
"##,
            WIDTH / 2.0,
            escape(title)
        );
        let mut chart = Self {
            x,
            y,
            body,
            legend: Vec::new(),
        };
        chart.axes(x_label, y_label);
        chart
    }

    fn px(&self, v: f64) -> f64 {
        LEFT + self.x.frac(v) * (WIDTH - LEFT - RIGHT)
    }

    fn py(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - self.y.frac(v) * (HEIGHT - TOP - BOTTOM)
    }

    fn axes(&mut self, x_label: &str, y_label: &str) {
        let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
        let mut s = String::new();
        for t in self.y.ticks() {
            let y = self.py(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                y + 4.0,
                label(t)
            );
        }
        for t in self.x.ticks() {
            let x = self.px(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + 18.0,
                label(t)
            );
        }
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="20" y="{}" text-anchor="middle" transform="rotate(-90 20 {})">{}</text>"##,
            x1 - x0,
            y0 - y1,
            (x0 + x1) / 2.0,
            HEIGHT - 15.0,
            escape(x_label),
            (y0 + y1) / 2.0,
            (y0 + y1) / 2.0,
            escape(y_label)
        );
        self.body.push_str(&s);
    }

    /// A shaded band between two x values (e.g. the warmup).
    fn band(&mut self, from: f64, to: f64, text: &str) {
        let (a, b) = (self.px(from), self.px(to));
        if b - a < 1.0 {
            return;
        }
        let _ = writeln!(
            self.body,
            r##"<rect x="{a:.1}" y="{TOP}" width="{:.1}" height="{}" fill="#f3f3f3"/><text x="{:.1}" y="{}" text-anchor="middle" fill="#888">{}</text>"##,
            b - a,
            HEIGHT - TOP - BOTTOM,
            (a + b) / 2.0,
            TOP + 14.0,
            escape(text)
        );
    }

    fn line(&mut self, name: &str, points: &[(f64, f64)]) {
        let color = COLORS[self.legend.len() % COLORS.len()];
        let coords: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        if !coords.is_empty() {
            let _ = writeln!(
                self.body,
                r##"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"##,
                coords.join(" ")
            );
        }
        self.legend.push((name.to_owned(), color));
    }

    fn bars(&mut self, name: &str, bars: &[(f64, f64, f64)]) {
        let color = COLORS[self.legend.len() % COLORS.len()];
        for &(lo, hi, count) in bars {
            let (x0, x1) = (self.px(lo), self.px(hi));
            let y = self.py(count);
            let _ = writeln!(
                self.body,
                r##"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="0.8"/>"##,
                (x1 - x0 - 1.0).max(0.5),
                (HEIGHT - BOTTOM - y).max(0.0)
            );
        }
        self.legend.push((name.to_owned(), color));
    }

    fn marker(&mut self, x: f64, text: &str) {
        let px = self.px(x);
        let _ = writeln!(
            self.body,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{}" stroke="#555" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#555">{}</text>"##,
            HEIGHT - BOTTOM,
            px + 3.0,
            TOP + 28.0,
            escape(text)
        );
    }

    fn finish(mut self) -> String {
        let x = WIDTH - RIGHT + 15.0;
        for (i, (name, color)) in self.legend.iter().enumerate() {
            let y = TOP + 10.0 + 20.0 * i as f64;
            let _ = writeln!(
                self.body,
                r##"<rect x="{x}" y="{}" width="14" height="4" fill="{color}"/><text x="{}" y="{}">{}</text>"##,
                y - 4.0,
                x + 20.0,
                y + 1.0,
                escape(name)
            );
        }
        self.body.push_str("</svg>\n");
        self.body
    }
}

/// p50, p99 and max delivery latency per second of due time.
pub fn latency_over_time(report: &Report) -> String {
    let seconds: Vec<_> = report
        .timeline
        .iter()
        .filter(|s| s.max_ms.is_some())
        .collect();
    let max_t = report.timeline.len().max(1) as f64;
    let lo = seconds
        .iter()
        .filter_map(|s| s.p50_ms)
        .fold(f64::INFINITY, f64::min);
    let hi = seconds
        .iter()
        .filter_map(|s| s.max_ms)
        .fold(0.0f64, f64::max);
    let y = if lo.is_finite() {
        Axis::log(lo, hi)
    } else {
        Axis::log(0.1, 10.0)
    };
    let mut chart = Chart::new(
        &format!(
            "Delivery latency over time: {} at {} ops/s",
            report.scenario, report.target_rate
        ),
        Axis::linear(0.0, max_t),
        "seconds since start (due time)",
        y,
        "latency (ms)",
    );
    chart.band(0.0, report.warmup_s, "warmup");
    type Pick = fn(&crate::stats::SecondSummary) -> Option<f64>;
    let series: [(&str, Pick); 3] = [
        ("p50", |s| s.p50_ms),
        ("p99", |s| s.p99_ms),
        ("max", |s| s.max_ms),
    ];
    for (name, pick) in series {
        let points: Vec<(f64, f64)> = seconds
            .iter()
            .filter_map(|s| pick(s).map(|v| (s.t as f64 + 0.5, v)))
            .collect();
        chart.line(name, &points);
    }
    chart.finish()
}

/// Acknowledgements and deliveries per second of arrival time.
pub fn throughput_over_time(report: &Report) -> String {
    let max_t = report.timeline.len().max(1) as f64;
    let hi = report
        .timeline
        .iter()
        .map(|s| s.delivered.max(s.acked).max(s.offered))
        .max()
        .unwrap_or(0) as f64;
    let mut chart = Chart::new(
        &format!("Throughput over time: {}", report.scenario),
        Axis::linear(0.0, max_t),
        "seconds since start",
        Axis::linear(0.0, hi * 1.1),
        "per second",
    );
    chart.band(0.0, report.warmup_s, "warmup");
    type Pick = fn(&crate::stats::SecondSummary) -> u64;
    let series: [(&str, Pick); 3] = [
        ("offered", |s| s.offered),
        ("acked", |s| s.acked),
        ("delivered", |s| s.delivered),
    ];
    for (name, pick) in series {
        let points: Vec<(f64, f64)> = report
            .timeline
            .iter()
            .map(|s| (s.t as f64 + 0.5, pick(s) as f64))
            .collect();
        chart.line(name, &points);
    }
    chart.finish()
}

/// Delivery latencies in logarithmic buckets (four per doubling), with percentile markers.
pub fn latency_histogram(report: &Report, h: &LatencyHistogram) -> String {
    let mut bars = Vec::new();
    let mut lower_ms = 0.0f64;
    if !h.is_empty() {
        // Buckets from 10 µs, each 2^(1/4) wider than the last.
        for v in h.iter_log(10, 2f64.powf(0.25)) {
            let upper_ms = v.value_iterated_to() as f64 / 1000.0;
            let count = v.count_since_last_iteration() as f64;
            if count > 0.0 {
                bars.push((lower_ms.max(upper_ms / 2f64.powf(0.25)), upper_ms, count));
            }
            lower_ms = upper_ms;
        }
    }
    let lo = bars.first().map_or(0.01, |b| b.0);
    let hi = bars.last().map_or(1.0, |b| b.1);
    let top = bars.iter().map(|b| b.2).fold(0.0, f64::max);
    let mut chart = Chart::new(
        &format!(
            "Delivery latency histogram: {} deliveries",
            report.latency_ms.count
        ),
        Axis::log(lo, hi),
        "latency (ms, log scale)",
        Axis::linear(0.0, top * 1.1),
        "deliveries",
    );
    chart.bars("deliveries", &bars);
    let l = &report.latency_ms;
    if l.count > 0 {
        chart.marker(l.p50, "p50");
        chart.marker(l.p99, "p99");
        chart.marker(l.max, "max");
    }
    chart.finish()
}

/// Writes the three plots into `dir` (created if needed) and returns their paths.
pub fn write_plots(
    dir: &Path,
    report: &Report,
    delivery: &LatencyHistogram,
) -> Result<Vec<PathBuf>, LoadgenError> {
    std::fs::create_dir_all(dir).map_err(|source| LoadgenError::Output {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = [
        ("latency_over_time.svg", latency_over_time(report)),
        ("throughput_over_time.svg", throughput_over_time(report)),
        ("latency_histogram.svg", latency_histogram(report, delivery)),
    ];
    let mut written = Vec::new();
    for (name, svg) in files {
        let path = dir.join(name);
        std::fs::write(&path, svg).map_err(|source| LoadgenError::Output {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_place_values_and_ticks() {
        let lin = Axis::linear(0.0, 100.0);
        assert_eq!(lin.frac(50.0), 0.5);
        assert_eq!(lin.frac(-5.0), 0.0);
        assert_eq!(lin.ticks(), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let log = Axis::log(0.3, 45.0);
        assert_eq!((log.min, log.max), (0.1, 100.0));
        assert!((log.frac(1.0) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(log.ticks(), vec![0.1, 1.0, 10.0, 100.0]);
    }

    #[test]
    fn labels_and_text_are_escaped() {
        assert_eq!(escape("a<b & c>"), "a&lt;b &amp; c&gt;");
        assert_eq!(label(25_000.0), "25k");
        assert_eq!(label(2_500_000.0), "2.5M");
        assert_eq!(label(0.1), "0.1");
    }
}
