//! `steerd ram timeline --plot FILE.svg`: predicted demand, actual traffic and active
//! capacity of a scenario run over time, one panel per run (cold).
//!
//! Input: the JSON objects `steerd run --scenario ... --json FILE` writes (their
//! `timeline` array: per logical minute `actual_pps`, `predicted_pps` — the 5-minute
//! forecast made five minutes earlier —, `capacity_pps` of the awake workers, `drops`
//! and `surge`). Several files give several panels, e.g. the three modes side by side.

use serde_json::Value;

/// One point of a timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Logical minute since the run started.
    pub minute: f64,
    /// Traffic that arrived (packets per logical second, scenario units).
    pub actual: f64,
    /// What the TPE had predicted for this minute five minutes earlier.
    pub predicted: Option<f64>,
    /// Capacity of the awake workers.
    pub capacity: f64,
    /// Packets dropped in this minute.
    pub drops: u64,
    /// Some destination was in a surge.
    pub surge: bool,
}

/// A run's label and timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// "scenario / mode".
    pub label: String,
    /// Points, one per logical minute.
    pub points: Vec<Point>,
}

/// Reads the timeline of a run summary.
pub fn from_json(v: &Value) -> Result<Timeline, String> {
    let arr = v
        .get("timeline")
        .and_then(Value::as_array)
        .ok_or("no \"timeline\" array: not the JSON of `steerd run --scenario`")?;
    let f = |p: &Value, k: &str| p.get(k).and_then(Value::as_f64);
    let mut points = Vec::with_capacity(arr.len());
    for (i, p) in arr.iter().enumerate() {
        points.push(Point {
            minute: f(p, "bucket").unwrap_or(i as f64),
            actual: f(p, "actual_pps").ok_or_else(|| format!("timeline[{i}]: no actual_pps"))?,
            predicted: f(p, "predicted_pps"),
            capacity: f(p, "capacity_pps")
                .ok_or_else(|| format!("timeline[{i}]: no capacity_pps"))?,
            drops: p.get("drops").and_then(Value::as_u64).unwrap_or(0),
            surge: p.get("surge").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    Ok(Timeline {
        label: format!("{} / {}", s("scenario"), s("mode")),
        points,
    })
}

/// Draws the timelines, one panel each, into an SVG file.
pub fn plot_svg(runs: &[Timeline], path: &std::path::Path) -> Result<(), String> {
    use plotters::prelude::*;
    if runs.is_empty() || runs.iter().all(|r| r.points.is_empty()) {
        return Err("nothing to plot".into());
    }
    let n = runs.len();
    let root = SVGBackend::new(path, (1200, 300 * n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ymax = runs
        .iter()
        .flat_map(|r| r.points.iter())
        .flat_map(|p| [p.actual, p.capacity, p.predicted.unwrap_or(0.0)])
        .fold(1.0f64, f64::max)
        * 1.05;
    for (run, area) in runs.iter().zip(root.split_evenly((n, 1))) {
        if run.points.is_empty() {
            continue;
        }
        let x1 = run.points.last().map_or(1.0, |p| p.minute.max(1.0));
        let drops: u64 = run.points.iter().map(|p| p.drops).sum();
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!(
                    "{}: demand, forecast and capacity ({drops} drops)",
                    run.label
                ),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x1, 0f64..ymax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("logical minute")
            .y_desc("packets / s")
            .draw()
            .map_err(|e| e.to_string())?;
        // Minutes with drops: red bars along the bottom.
        let bar = ymax * 0.03;
        chart
            .draw_series(run.points.iter().filter(|p| p.drops > 0).map(|p| {
                Rectangle::new([(p.minute - 0.5, 0.0), (p.minute + 0.5, bar)], RED.filled())
            }))
            .map_err(|e| e.to_string())?;
        type Get = Box<dyn Fn(&Point) -> Option<f64>>;
        let lines: [(&str, RGBColor, Get); 3] = [
            ("actual", RGBColor(90, 90, 90), Box::new(|p| Some(p.actual))),
            (
                "predicted (5 min ahead)",
                RGBColor(200, 30, 30),
                Box::new(|p| p.predicted),
            ),
            (
                "capacity (awake workers)",
                RGBColor(30, 80, 200),
                Box::new(|p| Some(p.capacity)),
            ),
        ];
        for (name, color, get) in lines {
            let pts: Vec<(f64, f64)> = run
                .points
                .iter()
                .filter_map(|p| get(p).map(|y| (p.minute, y)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_plots() {
        let v = json!({"scenario": "surge", "mode": "predictive", "timeline": [
            {"bucket": 0, "actual_pps": 10.0, "predicted_pps": null, "capacity_pps": 20.0, "drops": 0, "surge": false},
            {"bucket": 1, "actual_pps": 30.0, "predicted_pps": 28.0, "capacity_pps": 40.0, "drops": 3, "surge": true},
        ]});
        let t = from_json(&v).unwrap();
        assert_eq!(t.label, "surge / predictive");
        assert_eq!(t.points[1].predicted, Some(28.0));
        assert_eq!(t.points[0].predicted, None);
        let dir = std::env::temp_dir().join(format!("steerd-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.svg");
        plot_svg(&[t.clone(), t], &f).unwrap();
        let svg = std::fs::read_to_string(&f).unwrap();
        assert!(svg.contains("<svg") && svg.contains("capacity"));
        assert!(
            from_json(&json!({"mode": "x"}))
                .unwrap_err()
                .contains("timeline")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
