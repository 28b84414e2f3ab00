//! Small charts as inline SVG, drawn on the server from the daemon's usage history: no script,
//! no library, no request per chart. A line per series over the range's width, scaled to a
//! ceiling (a quota when there is one), with the latest value and the ceiling as text, so the
//! chart reads without a mouse and with a screen reader (`role="img"` and a label).

use hostel_core::history::{Point, Range};

/// What one chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    /// CPUs in use.
    Cpu,
    /// Memory in use.
    Memory,
    /// Bytes in the homes.
    Disk,
    /// Network bytes a second, received and sent.
    Network,
    /// Open sessions.
    Sessions,
}

impl Measure {
    fn title(self) -> &'static str {
        match self {
            Measure::Cpu => "CPU",
            Measure::Memory => "Memory",
            Measure::Disk => "Disk",
            Measure::Network => "Network",
            Measure::Sessions => "Sessions",
        }
    }

    /// The series it draws.
    fn series(self) -> &'static [Series] {
        match self {
            Measure::Cpu => &[("cpu", |p| p.cpu)],
            Measure::Memory => &[("memory", |p| p.memory)],
            Measure::Disk => &[("disk", |p| p.disk)],
            Measure::Network => &[("rx", |p| p.rx), ("tx", |p| p.tx)],
            Measure::Sessions => &[("sessions", |p| p.sessions)],
        }
    }

    fn show(self, v: f32) -> String {
        let bytes = |v: f32| hostel_core::ByteSize::bytes(v.max(0.0) as u64).human();
        match self {
            Measure::Cpu => format!("{v:.2} CPUs"),
            Measure::Memory | Measure::Disk => bytes(v),
            Measure::Network => format!("{}/s", bytes(v)),
            Measure::Sessions => format!("{v:.0}"),
        }
    }
}

/// One line of a chart: its CSS class, and its value at a point.
type Series = (&'static str, fn(&Point) -> f32);

/// The chart's size in SVG units; the page scales it.
/// Now, in the history's seconds since the epoch.
pub(crate) fn now_secs() -> u32 {
    u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX)
}

/// Links to `path?range=…` for each range, the one shown marked as the current page.
pub(crate) fn range_nav(path: &str, shown: Range) -> String {
    [Range::Hour, Range::Day, Range::Week]
        .iter()
        .map(|r| {
            let current = if *r == shown {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<a href=\"{path}?range={r}\"{current}>{r}</a>")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const W: f32 = 240.0;
const H: f32 = 48.0;

/// An inline SVG chart of `measure` over `range` ending `now` (seconds since the epoch), the
/// y axis up to `ceiling` (or the largest value, when higher or unknown).
pub(crate) fn chart(
    measure: Measure,
    points: &[Point],
    range: Range,
    now: u32,
    ceiling: Option<f32>,
) -> String {
    let from = now.saturating_sub(range.secs());
    let top = measure
        .series()
        .iter()
        .flat_map(|(_, f)| points.iter().map(f))
        .fold(ceiling.unwrap_or(0.0), f32::max);
    let top = if top > 0.0 { top } else { 1.0 };
    let mut lines = String::new();
    for (class, value) in measure.series() {
        let coords: Vec<String> = points
            .iter()
            .filter(|p| p.at >= from)
            .map(|p| {
                let x = (p.at - from) as f32 / range.secs() as f32 * W;
                let y = H - (value(p) / top).clamp(0.0, 1.0) * H;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        if !coords.is_empty() {
            lines.push_str(&format!(
                "<polyline class=\"{class}\" points=\"{}\"/>",
                coords.join(" ")
            ));
        }
    }
    let latest = points.last().map_or_else(
        || "no figures yet".to_owned(),
        |p| {
            measure
                .series()
                .iter()
                .map(|(class, f)| match *class {
                    "rx" => format!("in {}", measure.show(f(p))),
                    "tx" => format!("out {}", measure.show(f(p))),
                    _ => measure.show(f(p)),
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let of = ceiling.map_or_else(String::new, |c| format!(" of {}", measure.show(c)));
    let label = format!("{}, last {range}: {latest}{of}", measure.title());
    format!(
        "<figure class=\"chart\"><svg viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" \
         role=\"img\" aria-label=\"{label}\"><title>{label}</title>{lines}</svg>\
         <figcaption>{title} <span>{latest}{of}</span></figcaption></figure>",
        title = measure.title(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at: u32, cpu: f32) -> Point {
        Point {
            at,
            cpu,
            ..Point::default()
        }
    }

    #[test]
    fn a_line_spans_the_range_and_the_ceiling() {
        let now = 10_000;
        let points = [
            point(now - 3600, 0.0),
            point(now - 1800, 1.0),
            point(now, 2.0),
        ];
        let svg = chart(Measure::Cpu, &points, Range::Hour, now, Some(2.0));
        assert!(
            svg.contains("points=\"0.0,48.0 120.0,24.0 240.0,0.0\""),
            "{svg}"
        );
        assert!(
            svg.contains("CPU, last 1h: 2.00 CPUs of 2.00 CPUs"),
            "{svg}"
        );
    }

    #[test]
    fn a_value_over_the_ceiling_raises_it_and_nothing_is_drawn_without_points() {
        let now = 10_000;
        let svg = chart(
            Measure::Cpu,
            &[point(now, 4.0)],
            Range::Hour,
            now,
            Some(2.0),
        );
        assert!(svg.contains("240.0,0.0"), "{svg}");
        let empty = chart(Measure::Memory, &[], Range::Day, now, None);
        assert!(!empty.contains("polyline"), "{empty}");
        assert!(empty.contains("no figures yet"), "{empty}");
    }

    #[test]
    fn network_draws_both_directions() {
        let p = Point {
            at: 100,
            rx: 2048.0,
            tx: 1024.0,
            ..Point::default()
        };
        let svg = chart(Measure::Network, &[p], Range::Hour, 100, None);
        assert!(
            svg.contains("class=\"rx\"") && svg.contains("class=\"tx\""),
            "{svg}"
        );
        assert!(svg.contains("in 2KiB/s, out 1KiB/s"), "{svg}");
    }
}
