//! Charts as inline SVG, drawn on the server: no script, no chart library, nothing fetched.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

/// A bar per minute of the hour ending at `now` (`points` are minute starts), the largest value labelled.
pub fn bars(points: &[(DateTime<Utc>, i64)], now: DateTime<Utc>, label: &str) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 140.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 20.0;
    const SLOTS: i64 = 60;
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let slot = (W - LEFT) / SLOTS as f64;
    let start = now - chrono::Duration::minutes(SLOTS);
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(label) {
            title { (label) }
            line class="axis" x1=(LEFT) y1=(H - BOTTOM) x2=(W) y2=(H - BOTTOM) {}
            text class="tick" x=(LEFT - 4.0) y="12" text-anchor="end" { (max as i64) }
            text class="tick" x=(LEFT - 4.0) y=(H - BOTTOM) text-anchor="end" { "0" }
            @for (at, value) in points {
                @let i = ((*at - start).num_seconds() / 60).clamp(0, SLOTS - 1) as f64;
                @let h = (*value as f64 / max) * (H - BOTTOM - 8.0);
                rect class="bar" x=(format!("{:.1}", LEFT + i * slot + 1.0))
                    y=(format!("{:.1}", H - BOTTOM - h)) width=(format!("{:.1}", (slot - 2.0).max(1.0)))
                    height=(format!("{h:.1}")) {
                    title { (at.format("%H:%M")) ": " (value) }
                }
            }
            text class="tick" x=(LEFT) y=(H - 4.0) { (start.format("%H:%M")) }
            text class="tick" x=(W) y=(H - 4.0) text-anchor="end" { (now.format("%H:%M")) }
        }
    }
}

/// One cell of a heat map.
#[derive(Debug, Clone)]
pub struct Cell {
    pub row: usize,
    pub column: usize,
    /// Drifted cells are drawn in the alarm colour, the others by `intensity` (0 to 1).
    pub alarm: bool,
    pub intensity: f64,
    pub tip: String,
}

/// A grid of `rows` × `columns` cells with row labels on the left and column labels below.
pub fn heat_map(rows: &[String], columns: &[String], cells: &[Cell], label: &str) -> Markup {
    const CELL: f64 = 18.0;
    const LEFT: f64 = 150.0;
    const BOTTOM: f64 = 56.0;
    let w = LEFT + CELL * columns.len() as f64 + 8.0;
    let h = CELL * rows.len() as f64 + BOTTOM;
    html! {
        svg class="heat" viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img" aria-label=(label) {
            title { (label) }
            @for (r, name) in rows.iter().enumerate() {
                text class="tick" x=(LEFT - 6.0) y=(format!("{:.1}", CELL * r as f64 + CELL * 0.7))
                    text-anchor="end" { (name) }
            }
            @for (c, name) in columns.iter().enumerate() {
                @let x = LEFT + CELL * c as f64 + CELL * 0.6;
                @let y = CELL * rows.len() as f64 + 6.0;
                text class="tick" x=(format!("{x:.1}")) y=(format!("{y:.1}"))
                    transform=(format!("rotate(60 {x:.1} {y:.1})")) { (name) }
            }
            @for cell in cells {
                @let fill = if cell.alarm {
                    "hsl(4, 75%, 52%)".to_owned()
                } else {
                    format!("hsl(150, 45%, {:.0}%)", 92.0 - 40.0 * cell.intensity.clamp(0.0, 1.0))
                };
                rect class=(if cell.alarm { "cell drifted" } else { "cell" })
                    x=(format!("{:.1}", LEFT + CELL * cell.column as f64))
                    y=(format!("{:.1}", CELL * cell.row as f64)) width=(CELL - 1.0) height=(CELL - 1.0)
                    fill=(fill) {
                    title { (cell.tip) }
                }
            }
        }
    }
}

/// Horizontal bars for (label, value) pairs, e.g. feature importance.
pub fn hbars(items: &[(String, f64)], label: &str) -> Markup {
    const ROW: f64 = 16.0;
    const LEFT: f64 = 150.0;
    const W: f64 = 420.0;
    let max = items
        .iter()
        .map(|i| i.1.abs())
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let h = ROW * items.len() as f64 + 4.0;
    html! {
        svg class="hbars" viewBox=(format!("0 0 {W} {h}")) width=(W) height=(h) role="img" aria-label=(label) {
            title { (label) }
            @for (i, (name, value)) in items.iter().enumerate() {
                @let y = ROW * i as f64;
                text class="tick" x=(LEFT - 6.0) y=(format!("{:.1}", y + ROW * 0.75)) text-anchor="end" { (name) }
                rect class="bar" x=(LEFT) y=(format!("{:.1}", y + 2.0))
                    width=(format!("{:.1}", (value.abs() / max) * (W - LEFT - 60.0))) height=(ROW - 4.0) {
                    title { (name) ": " (format!("{value:.4}")) }
                }
                text class="tick" x=(format!("{:.1}", LEFT + (value.abs() / max) * (W - LEFT - 60.0) + 4.0))
                    y=(format!("{:.1}", y + ROW * 0.75)) { (format!("{value:.3}")) }
            }
        }
    }
}
