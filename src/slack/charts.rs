//! Charts drawn as PNG, for Slack messages people would rather look at than
//! read: a job's burn-down against its deadline, and the weekly SLA review.
//!
//! Drawing is plotters' bitmap backend in memory, text through ab_glyph with
//! DejaVu Sans embedded from `assets/` (so no system fonts, fontconfig or
//! freetype are needed), and the PNG is encoded by the `png` crate. Every
//! time on a chart is UTC and says so.
//!
//! A chart goes to Slack through the outbox: [`chart_upload_message`] builds
//! the row (method [`UPLOAD_METHOD`]); the worker renders the PNG when it
//! delivers it and uploads it with Slack's external upload flow
//! ([`crate::slack::upload`]).

use crate::store::NewOutboxMessage;
use anyhow::{anyhow, Context};
use chrono::{DateTime, TimeZone, Timelike, Utc};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// The outbox pseudo-method of a chart upload. Its payload is
/// `{"chart": <Chart>, "filename", "title", "alt_text", "initial_comment"?,
/// "channel"?, "thread_ts"?}`; see [`chart_upload_message`].
pub const UPLOAD_METHOD: &str = "files.upload_chart";

/// Every chart's size in pixels.
pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 500;

/// A job's progress against its deadline.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BurnDown {
    /// e.g. "orders_daily · 3f2a…"
    pub title: String,
    /// Partitions in the job.
    pub total: i64,
    /// Cumulative completed partitions over time, oldest first (may be empty).
    pub done: Vec<(DateTime<Utc>, i64)>,
    pub now: DateTime<Utc>,
    /// Projected completion, 50%.
    pub p50: Option<DateTime<Utc>>,
    /// Projected completion, 90% ("likely by").
    pub p90: Option<DateTime<Utc>>,
    pub deadline: DateTime<Utc>,
}

/// The weekly SLA review's numbers, drawn as one image with three panels.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReviewCharts {
    /// "SLA review · acme · 2026-11-16 to 2026-11-23"
    pub title: String,
    /// (label "25%"/"50%"/"75%", Servo's median absolute ETA error, the
    /// bot's), in minutes; `None` = no data.
    pub eta_error_minutes: Vec<(String, Option<f64>, Option<f64>)>,
    /// At-risk episodes opened per weekday, Monday first.
    pub by_weekday: [i64; 7],
    /// At-risk episodes opened per hour of the day (UTC).
    pub by_hour: [i64; 24],
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Chart {
    BurnDown(BurnDown),
    Review(ReviewCharts),
}

impl Chart {
    /// The chart as a [`WIDTH`]x[`HEIGHT`] PNG.
    pub fn render_png(&self) -> anyhow::Result<Vec<u8>> {
        register_font()?;
        let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            match self {
                Chart::BurnDown(b) => draw_burn_down(&root, b)?,
                Chart::Review(r) => draw_review(&root, r)?,
            }
            root.present().map_err(draw_err)?;
        }
        encode_png(&rgb)
    }
}

/// An outbox row that uploads `chart` as a PNG when delivered. Channel and
/// thread are left to the caller: set `payload["channel"]` (and
/// `payload["thread_ts"]`), or `thread_alert_id` with `thread_field =
/// "thread_ts"` to reply in an alert's thread (its channel is filled in too).
/// No dedup key either: set one if the same chart must not go out twice.
pub fn chart_upload_message(
    chart: &Chart,
    filename: &str,
    title: &str,
    alt_text: &str,
    initial_comment: Option<String>,
) -> NewOutboxMessage {
    let mut payload = serde_json::json!({
        "chart": chart,
        "filename": filename,
        "title": title,
        "alt_text": alt_text,
    });
    if let Some(comment) = initial_comment {
        payload["initial_comment"] = comment.into();
    }
    NewOutboxMessage {
        dedup_key: None,
        method: UPLOAD_METHOD.into(),
        payload,
        ordering_key: None,
        thread_alert_id: None,
        thread_field: None,
        link_kind: None,
        link_id: None,
        not_before: None,
    }
}

// ---------------------------------------------------------------------------
// Font, errors, PNG

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();
static FONT_OK: AtomicBool = AtomicBool::new(false);

/// Registers the embedded font as plotters' `sans-serif`, once per process.
fn register_font() -> anyhow::Result<()> {
    FONT_ONCE.call_once(|| {
        let ok = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok();
        FONT_OK.store(ok, Ordering::SeqCst);
    });
    if FONT_OK.load(Ordering::SeqCst) {
        Ok(())
    } else {
        Err(anyhow!("the embedded font could not be loaded"))
    }
}

fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the chart failed: {e:?}")
}

fn encode_png(rgb: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 * 1024);
    {
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // Flat colours compress well even at the fast setting.
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().context("PNG header")?;
        writer.write_image_data(rgb).context("PNG data")?;
        writer.finish().context("PNG end")?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Style

const INK: RGBColor = RGBColor(33, 37, 41);
const MUTED: RGBColor = RGBColor(108, 117, 125);
const GRID: RGBColor = RGBColor(222, 226, 230);
const DONE: RGBColor = RGBColor(25, 118, 70);
const P50: RGBColor = RGBColor(37, 99, 235);
const P90: RGBColor = RGBColor(217, 119, 6);
const DEADLINE: RGBColor = RGBColor(220, 38, 38);
const SERVO: RGBColor = RGBColor(100, 116, 139);
const BOT: RGBColor = RGBColor(37, 99, 235);
const BARS: RGBColor = RGBColor(217, 119, 6);

fn text(size: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT, size).into_font().color(&color)
}

fn anchored(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    text(size, color).pos(Pos::new(h, v))
}

/// Draws the title row and returns the area under it.
fn title_row<'a>(
    root: &DrawingArea<BitMapBackend<'a>, Shift>,
    title: &str,
) -> anyhow::Result<DrawingArea<BitMapBackend<'a>, Shift>> {
    let (top, rest) = root.split_vertically(40);
    top.draw(&Text::new(ellipsize(title, 80), (16, 12), text(20.0, INK)))
        .map_err(draw_err)?;
    Ok(rest)
}

/// Text at a data point `at`, moved by `offset` pixels. A macro because
/// the composed element's type is not nameable outside plotters.
macro_rules! label_at {
    ($at:expr, $offset:expr, $label:expr, $style:expr $(,)?) => {
        EmptyElement::at($at) + Text::new($label, $offset, $style)
    };
}

fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// A linear f64 axis with ticks exactly where we say (round times, whole
/// counts, category centres) and labels from the mesh's formatter.
#[derive(Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Ticked {
        Ticked { lo, hi, ticks }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let f = if span > 0.0 {
            (value - self.lo) / span
        } else {
            0.5
        };
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Bold lines only: no light grid between the ticks.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

// ---------------------------------------------------------------------------
// Burn-down

/// The x axis of a burn-down: seconds since the epoch, and where its ticks go.
struct TimeAxis {
    start: f64,
    end: f64,
    ticks: Vec<f64>,
    step: i64,
    span: i64,
}

impl TimeAxis {
    fn new(start: i64, end: i64) -> TimeAxis {
        const STEPS: &[i64] = &[
            60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172_800, 604_800,
        ];
        let span = (end - start).max(60);
        let step = STEPS
            .iter()
            .copied()
            .find(|s| span / s <= 8)
            .unwrap_or(2_592_000);
        let mut ticks = Vec::new();
        let mut t = start.div_euclid(step) * step;
        if t < start {
            t += step;
        }
        while t <= end {
            ticks.push(t as f64);
            t += step;
        }
        TimeAxis {
            start: start as f64,
            end: end as f64,
            ticks,
            step,
            span,
        }
    }

    /// HH:MM within a day; across days, midnights (and the first tick) are
    /// dates and the rest HH:MM; with ticks a day or more apart, dates only.
    fn label(&self, x: f64) -> String {
        let Some(t) = Utc.timestamp_opt(x as i64, 0).single() else {
            return String::new();
        };
        if self.span <= 86_400 {
            t.format("%H:%M").to_string()
        } else if self.step >= 86_400
            || (t.hour() == 0 && t.minute() == 0)
            || self.ticks.first() == Some(&x)
        {
            t.format("%b %d").to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    }
}

/// A readable time for the legend: HH:MM, with the date when it is not on
/// `now`'s day.
fn legend_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%b %d %H:%M").to_string()
    }
}

/// Integer ticks from 0 to at least `max`: a 1/2/5 step giving at most 8.
fn count_ticks(max: i64) -> (i64, Vec<i64>) {
    let max = max.max(1);
    let mut step = 1i64;
    'outer: loop {
        for m in [1, 2, 5] {
            let s = step * m;
            if max / s <= 7 {
                step = s;
                break 'outer;
            }
        }
        step *= 10;
    }
    let top = max.div_euclid(step) * step + if max % step == 0 { 0 } else { step };
    (top, (0..=top / step).map(|i| i * step).collect())
}

fn draw_burn_down(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    b: &BurnDown,
) -> anyhow::Result<()> {
    let area = title_row(root, &b.title)?;
    let (legend_row, plot_area) = area.split_vertically(30);

    let now = b.now;
    let last_done = b.done.last().map(|&(_, d)| d).unwrap_or(0);
    let first_time = b.done.first().map(|&(t, _)| t).unwrap_or(now);
    let start = first_time.min(now).min(b.deadline);
    let must_show = now.max(b.deadline);
    // Projections a long way beyond the deadline would squash the rest of
    // the chart: the axis stops at twice the span that must be shown, and a
    // projection ending later runs off the edge (its time is in the legend).
    let base = (must_show - start).num_seconds().max(3600);
    let limit = must_show.timestamp() + base;
    let latest = [b.p50, b.p90]
        .into_iter()
        .flatten()
        .map(|t| t.timestamp())
        .fold(must_show.timestamp(), i64::max)
        .min(limit);
    let raw_start = start.timestamp();
    let pad = ((latest - raw_start) as f64 * 0.03) as i64;
    let axis = TimeAxis::new(raw_start - pad.max(60), latest + pad.max(60));

    let max_done = b.done.iter().map(|&(_, d)| d).max().unwrap_or(0);
    let y_top_value = b.total.max(max_done).max(1);
    // A little room above the total for the labels there; ticks stay on
    // round counts within it.
    let y_top = y_top_value as f64 * 1.07;
    let (_, y_ticks) = count_ticks(y_top_value);
    let y_ticks: Vec<f64> = y_ticks
        .into_iter()
        .map(|v| v as f64)
        .filter(|&v| v <= y_top)
        .collect();

    let mut chart = ChartBuilder::on(&plot_area)
        .margin_left(12)
        .margin_right(28)
        .margin_top(8)
        .margin_bottom(8)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            Ticked::new(axis.start, axis.end, axis.ticks.clone()),
            Ticked::new(0.0, y_top, y_ticks),
        )
        .map_err(draw_err)?;
    let x_fmt = |x: &f64| axis.label(*x);
    let y_fmt = |y: &f64| format!("{}", *y as i64);
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .label_style(text(13.0, INK))
        .axis_desc_style(text(14.0, MUTED))
        .x_desc("time (UTC)")
        .y_desc("partitions completed")
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(draw_err)?;

    let x = |t: DateTime<Utc>| (t.timestamp() as f64).clamp(axis.start, axis.end);
    let y_max = y_top;

    // After the deadline: a faint red zone.
    let dl = x(b.deadline);
    if dl < axis.end {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(dl, 0.0), (axis.end, y_max)],
                DEADLINE.mix(0.06).filled(),
            )))
            .map_err(draw_err)?;
    }
    // The job's size.
    let total = b.total.max(0) as f64;
    chart
        .draw_series(DashedLineSeries::new(
            [(axis.start, total), (axis.end, total)],
            4,
            4,
            MUTED.stroke_width(1),
        ))
        .map_err(draw_err)?;
    chart
        .draw_series(std::iter::once(label_at!(
            (axis.start, total),
            (6, -3),
            format!("total {}", b.total),
            anchored(12.0, MUTED, HPos::Left, VPos::Bottom),
        )))
        .map_err(draw_err)?;

    // Now.
    let nx = x(now);
    chart
        .draw_series(DashedLineSeries::new(
            [(nx, 0.0), (nx, y_max)],
            2,
            3,
            MUTED.stroke_width(1),
        ))
        .map_err(draw_err)?;

    // Projections: from (now, done so far) to (P50/P90, total), cut at the
    // edge when they end beyond it. One at or before now has nothing to draw
    // (the legend still gives its time).
    for (name, p, color) in [("P90", b.p90, P90), ("P50", b.p50, P50)] {
        let Some(p) = p.filter(|&p| p > now) else {
            continue;
        };
        let (x0, y0) = (nx, last_done as f64);
        let x1 = p.timestamp() as f64;
        let (x_end, y_end) = if x1 <= axis.end {
            (x1, total)
        } else {
            let f = (axis.end - x0) / (x1 - x0);
            (axis.end, y0 + (total - y0) * f)
        };
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, y0), (x_end, y_end)],
                8,
                5,
                color.stroke_width(3),
            ))
            .map_err(draw_err)?;
        if x1 <= axis.end {
            chart
                .draw_series(std::iter::once(Circle::new((x1, total), 4, color.filled())))
                .map_err(draw_err)?;
        } else {
            chart
                .draw_series(std::iter::once(label_at!(
                    (axis.end, y_end),
                    (-2, -6),
                    format!("{name} {} →", legend_time(p, now)),
                    anchored(12.0, color, HPos::Right, VPos::Bottom),
                )))
                .map_err(draw_err)?;
        }
    }

    // What is done: a step line, flat from the last completion to now.
    if !b.done.is_empty() {
        let mut points = Vec::with_capacity(b.done.len() * 2 + 1);
        let mut prev: Option<i64> = None;
        for &(t, d) in &b.done {
            let tx = x(t);
            if let Some(p) = prev {
                points.push((tx, p as f64));
            }
            points.push((tx, d as f64));
            prev = Some(d);
        }
        if now > b.done[b.done.len() - 1].0 {
            points.push((nx, last_done as f64));
        }
        chart
            .draw_series(LineSeries::new(points, DONE.stroke_width(3)))
            .map_err(draw_err)?;
    } else {
        let right_half = nx > axis.start + (axis.end - axis.start) / 2.0;
        chart
            .draw_series(std::iter::once(label_at!(
                (nx, 0.0),
                (if right_half { -6 } else { 6 }, -8),
                "no partition completed yet".to_string(),
                anchored(
                    13.0,
                    MUTED,
                    if right_half { HPos::Right } else { HPos::Left },
                    VPos::Bottom,
                ),
            )))
            .map_err(draw_err)?;
    }

    // The deadline, on top of everything.
    chart
        .draw_series(LineSeries::new(
            [(dl, 0.0), (dl, y_max)],
            DEADLINE.stroke_width(2),
        ))
        .map_err(draw_err)?;
    let dl_left = dl > axis.start + (axis.end - axis.start) * 0.75;
    let dl_label = if b.deadline < now {
        "missed deadline"
    } else {
        "deadline"
    };
    chart
        .draw_series(std::iter::once(label_at!(
            (dl, y_max),
            (if dl_left { -6 } else { 6 }, 4),
            dl_label.to_string(),
            anchored(
                13.0,
                DEADLINE,
                if dl_left { HPos::Right } else { HPos::Left },
                VPos::Top,
            ),
        )))
        .map_err(draw_err)?;

    // The legend, above the plot where it can hide nothing.
    let when = |p: Option<DateTime<Utc>>| match p {
        Some(t) => legend_time(t, now),
        None => "no forecast".into(),
    };
    let entries: Vec<(Swatch, RGBColor, String)> = vec![
        (
            Swatch::Solid,
            DONE,
            format!("done {last_done} of {}", b.total),
        ),
        (Swatch::Dashed, P50, format!("P50 {}", when(b.p50))),
        (
            Swatch::Dashed,
            P90,
            format!("P90 (likely by) {}", when(b.p90)),
        ),
        (
            Swatch::Solid,
            DEADLINE,
            format!("deadline {}", legend_time(b.deadline, now)),
        ),
        (
            Swatch::Dotted,
            MUTED,
            format!("now {} UTC", legend_time(now, now)),
        ),
    ];
    draw_legend(&legend_row, &entries)
}

enum Swatch {
    Solid,
    Dashed,
    Dotted,
}

/// A row of line swatches with their labels, left to right.
fn draw_legend(
    row: &DrawingArea<BitMapBackend<'_>, Shift>,
    entries: &[(Swatch, RGBColor, String)],
) -> anyhow::Result<()> {
    let style = text(13.0, INK);
    let mut x = 80;
    let y = 14;
    for (swatch, color, label) in entries {
        match swatch {
            Swatch::Solid => row
                .draw(&PathElement::new(
                    vec![(x, y), (x + 24, y)],
                    color.stroke_width(3),
                ))
                .map_err(draw_err)?,
            Swatch::Dashed | Swatch::Dotted => {
                let (dash, gap, width) = match swatch {
                    Swatch::Dashed => (7, 4, 3),
                    _ => (2, 3, 1),
                };
                let mut s = x;
                while s < x + 24 {
                    row.draw(&PathElement::new(
                        vec![(s, y), ((s + dash).min(x + 24), y)],
                        color.stroke_width(width),
                    ))
                    .map_err(draw_err)?;
                    s += dash + gap;
                }
            }
        }
        row.draw(&Text::new(
            label.clone(),
            (x + 30, y),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(draw_err)?;
        let (w, _) = row.estimate_text_size(label, &style).map_err(draw_err)?;
        x += 30 + w as i32 + 22;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Review

fn draw_review(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    r: &ReviewCharts,
) -> anyhow::Result<()> {
    let area = title_row(root, &r.title)?;
    let (upper, lower) = area.split_vertically(235);
    let (left, right) = upper.split_horizontally(470);
    draw_eta_errors(&left, &r.eta_error_minutes)?;
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let weekday_labels: Vec<String> = WEEKDAYS.iter().map(|d| d.to_string()).collect();
    draw_counts(
        &right,
        "At-risk episodes opened, by weekday",
        &weekday_labels,
        &r.by_weekday,
    )?;
    let hour_labels: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    draw_counts(
        &lower,
        "At-risk episodes opened, by hour of day (UTC)",
        &hour_labels,
        &r.by_hour,
    )
}

/// A usable number of minutes: finite and not negative.
fn minutes(v: Option<f64>) -> Option<f64> {
    v.filter(|m| m.is_finite()).map(|m| m.max(0.0))
}

fn fmt_minutes(m: f64) -> String {
    if m == 0.0 {
        "0".into()
    } else if m >= 120.0 {
        format!("{:.1}h", m / 60.0)
    } else if m >= 10.0 {
        format!("{m:.0}m")
    } else {
        format!("{m:.1}m")
    }
}

/// A 1/2/5 step for a minutes axis up to `max`, and its ticks.
fn value_ticks(max: f64) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| max / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let top = (max / step).ceil() * step;
    let n = (top / step).round() as i64;
    (top, (0..=n).map(|i| i as f64 * step).collect())
}

fn draw_eta_errors(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    rows: &[(String, Option<f64>, Option<f64>)],
) -> anyhow::Result<()> {
    let n = rows.len().max(1);
    let max = rows
        .iter()
        .flat_map(|(_, s, b)| [minutes(*s), minutes(*b)])
        .flatten()
        .fold(0.0, f64::max);
    let any_data = rows
        .iter()
        .any(|(_, s, b)| minutes(*s).is_some() || minutes(*b).is_some());
    // Headroom for the value labels and the legend.
    let (top, ticks) = value_ticks(max * 1.3);
    let centres: Vec<f64> = (0..rows.len()).map(|i| i as f64 + 0.5).collect();
    let mut chart = ChartBuilder::on(area)
        .caption("ETA error by progress (lower is better)", text(15.0, INK))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(
            Ticked::new(0.0, n as f64, centres),
            Ticked::new(0.0, top, ticks),
        )
        .map_err(draw_err)?;
    let x_fmt = |x: &f64| {
        let i = x.floor() as usize;
        rows.get(i)
            .map(|(label, _, _)| format!("at {} done", ellipsize(label, 12)))
            .unwrap_or_default()
    };
    let y_fmt = |y: &f64| fmt_minutes(*y);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .label_style(text(12.0, INK))
        .axis_desc_style(text(13.0, MUTED))
        .y_desc("median |error|")
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(draw_err)?;

    let label_style = anchored(11.0, INK, HPos::Center, VPos::Bottom);
    let missing_style = anchored(11.0, MUTED, HPos::Center, VPos::Bottom);
    let lift = top * 0.015;
    for (series, color, offset) in [("Servo", SERVO, 0.12), ("bot", BOT, 0.5)] {
        let bars: Vec<(f64, Option<f64>)> = rows
            .iter()
            .enumerate()
            .map(|(i, (_, s, b))| {
                let v = if series == "Servo" { *s } else { *b };
                (i as f64 + offset, minutes(v))
            })
            .collect();
        chart
            .draw_series(bars.iter().filter_map(|&(x0, v)| {
                v.map(|v| Rectangle::new([(x0, 0.0), (x0 + 0.38, v)], color.filled()))
            }))
            .map_err(draw_err)?
            .label(if series == "Servo" {
                "Servo's ETA"
            } else {
                "the bot's forecast"
            })
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart
            .draw_series(bars.iter().map(|&(x0, v)| match v {
                Some(v) => Text::new(fmt_minutes(v), (x0 + 0.19, v + lift), label_style.clone()),
                None => Text::new("n/a".to_string(), (x0 + 0.19, lift), missing_style.clone()),
            }))
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(text(12.0, INK))
        .background_style(WHITE.mix(0.9))
        .border_style(GRID)
        .draw()
        .map_err(draw_err)?;
    if !any_data {
        chart
            .draw_series(std::iter::once(Text::new(
                "no ETA data this week",
                (n as f64 / 2.0, top / 2.0),
                anchored(14.0, MUTED, HPos::Center, VPos::Center),
            )))
            .map_err(draw_err)?;
    }
    Ok(())
}

fn draw_counts(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    labels: &[String],
    counts: &[i64],
) -> anyhow::Result<()> {
    let n = counts.len();
    let max = counts.iter().copied().max().unwrap_or(0).max(0);
    let (top, ticks) = count_ticks(max + (max as f64 * 0.15).ceil() as i64);
    let ticks: Vec<f64> = ticks.into_iter().map(|v| v as f64).collect();
    let centres: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text(15.0, INK))
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(44)
        .build_cartesian_2d(
            Ticked::new(0.0, n as f64, centres),
            Ticked::new(0.0, top as f64, ticks),
        )
        .map_err(draw_err)?;
    let x_fmt = |x: &f64| labels.get(x.floor() as usize).cloned().unwrap_or_default();
    let y_fmt = |y: &f64| format!("{}", *y as i64);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .label_style(text(12.0, INK))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| {
                    Rectangle::new(
                        [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, c as f64)],
                        BARS.filled(),
                    )
                }),
        )
        .map_err(draw_err)?;
    let lift = top as f64 * 0.015;
    chart
        .draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| {
                    Text::new(
                        c.to_string(),
                        (i as f64 + 0.5, c as f64 + lift),
                        anchored(11.0, INK, HPos::Center, VPos::Bottom),
                    )
                }),
        )
        .map_err(draw_err)?;
    if max == 0 {
        chart
            .draw_series(std::iter::once(Text::new(
                "no at-risk episodes",
                (n as f64 / 2.0, top as f64 / 2.0),
                anchored(14.0, MUTED, HPos::Center, VPos::Center),
            )))
            .map_err(draw_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

    /// Width and height from the IHDR chunk, after checking the signature.
    fn png_size(png: &[u8]) -> (u32, u32) {
        assert!(png.len() > 33, "too short for a PNG: {} bytes", png.len());
        assert_eq!(&png[..8], PNG_SIGNATURE, "PNG signature");
        assert_eq!(&png[12..16], b"IHDR", "IHDR comes first");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        (w, h)
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A job started at 09:00, 60% done at 13:30, due at 16:00.
    pub(crate) fn example_burn_down() -> BurnDown {
        let start = at("2026-11-18T09:00:00Z");
        let done = (0..=27)
            .map(|i| {
                // Slow start, then a steady pace.
                let d = if i < 6 { i * 6 } else { 36 + (i - 6) * 12 };
                (start + Duration::minutes(10 * i), d)
            })
            .collect();
        BurnDown {
            title: "orders_daily · 3f2a9c1e…".into(),
            total: 500,
            done,
            now: at("2026-11-18T13:40:00Z"),
            p50: Some(at("2026-11-18T15:35:00Z")),
            p90: Some(at("2026-11-18T16:25:00Z")),
            deadline: at("2026-11-18T16:00:00Z"),
        }
    }

    pub(crate) fn example_review() -> ReviewCharts {
        ReviewCharts {
            title: "SLA review · acme · 2026-11-16 to 2026-11-23".into(),
            eta_error_minutes: vec![
                ("25%".into(), Some(48.0), Some(21.5)),
                ("50%".into(), Some(31.0), Some(12.0)),
                ("75%".into(), Some(14.0), None),
            ],
            by_weekday: [3, 5, 2, 4, 7, 0, 1],
            by_hour: [
                0, 0, 1, 0, 0, 0, 1, 2, 3, 2, 1, 1, 0, 2, 4, 3, 1, 0, 0, 0, 1, 0, 0, 0,
            ],
        }
    }

    fn renders(chart: &Chart) -> Vec<u8> {
        let png = chart.render_png().expect("renders");
        assert_eq!(png_size(&png), (WIDTH, HEIGHT));
        png
    }

    /// Writes the example charts for a person to look at when
    /// `CHARTS_EXAMPLE_DIR` is set (e.g. `/tmp`).
    fn keep(name: &str, png: &[u8]) {
        if let Ok(dir) = std::env::var("CHARTS_EXAMPLE_DIR") {
            std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
        }
    }

    #[test]
    fn a_burn_down_renders_as_a_png_of_the_right_size() {
        let png = renders(&Chart::BurnDown(example_burn_down()));
        keep("chart-burn-down.png", &png);
        assert!(png.len() < 200_000, "{} bytes", png.len());
    }

    #[test]
    fn a_review_renders_as_a_png_of_the_right_size() {
        let png = renders(&Chart::Review(example_review()));
        keep("chart-review.png", &png);
    }

    #[test]
    fn degenerate_burn_downs_still_render() {
        let base = example_burn_down();
        let now = base.now;
        let cases = [
            // Nothing done yet, no forecast.
            BurnDown {
                done: vec![],
                p50: None,
                p90: None,
                ..base.clone()
            },
            // The deadline already passed; P90 days beyond it.
            BurnDown {
                deadline: now - Duration::hours(2),
                p90: Some(now + Duration::days(9)),
                ..base.clone()
            },
            // Everything at one instant, an empty job.
            BurnDown {
                total: 0,
                done: vec![(now, 0)],
                p50: Some(now),
                p90: Some(now),
                deadline: now,
                ..base.clone()
            },
            // More done than the total says, projections in the past.
            BurnDown {
                total: 10,
                done: vec![(now - Duration::days(3), 4), (now, 12)],
                p50: Some(now - Duration::hours(1)),
                p90: None,
                deadline: now + Duration::days(2),
                ..base.clone()
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let png = renders(&Chart::BurnDown(case));
            keep(&format!("chart-burn-down-degenerate-{i}.png"), &png);
        }
    }

    #[test]
    fn an_empty_review_still_renders() {
        let empty = ReviewCharts {
            title: String::new(),
            eta_error_minutes: vec![],
            by_weekday: [0; 7],
            by_hour: [0; 24],
        };
        renders(&Chart::Review(empty.clone()));
        let no_data = ReviewCharts {
            eta_error_minutes: vec![
                ("25%".into(), None, None),
                ("50%".into(), Some(f64::NAN), Some(-3.0)),
            ],
            ..empty
        };
        let png = renders(&Chart::Review(no_data));
        keep("chart-review-empty.png", &png);
    }

    #[test]
    fn charts_keep_their_json_shape() {
        let chart = Chart::BurnDown(example_burn_down());
        let json = serde_json::to_value(&chart).unwrap();
        assert_eq!(json["kind"], "burn_down");
        assert_eq!(json["done"][0][0], "2026-11-18T09:00:00Z");
        let back: Chart = serde_json::from_value(json).unwrap();
        assert_eq!(back, chart);
        let review = Chart::Review(example_review());
        let json = serde_json::to_value(&review).unwrap();
        assert_eq!(json["kind"], "review");
        assert_eq!(serde_json::from_value::<Chart>(json).unwrap(), review);
    }

    #[test]
    fn an_upload_message_carries_the_chart_and_leaves_the_place_to_the_caller() {
        let chart = Chart::Review(example_review());
        let msg = chart_upload_message(&chart, "review.png", "SLA review", "bars", None);
        assert_eq!(msg.method, UPLOAD_METHOD);
        assert_eq!(msg.payload["filename"], "review.png");
        assert!(msg.payload.get("initial_comment").is_none());
        assert!(msg.payload.get("channel").is_none());
        assert!(msg.thread_alert_id.is_none() && msg.dedup_key.is_none());
        let back: Chart = serde_json::from_value(msg.payload["chart"].clone()).unwrap();
        assert_eq!(back, chart);
    }

    #[test]
    fn time_ticks_are_round_and_labelled_in_utc() {
        let axis = TimeAxis::new(
            at("2026-11-18T09:03:00Z").timestamp(),
            at("2026-11-18T16:10:00Z").timestamp(),
        );
        let labels: Vec<String> = axis.ticks.iter().map(|&t| axis.label(t)).collect();
        assert_eq!(labels.first().map(String::as_str), Some("10:00"));
        assert!(labels.len() <= 9, "{labels:?}");
        let days = TimeAxis::new(
            at("2026-11-16T20:00:00Z").timestamp(),
            at("2026-11-18T08:00:00Z").timestamp(),
        );
        let labels: Vec<String> = days.ticks.iter().map(|&t| days.label(t)).collect();
        assert!(labels.contains(&"Nov 17".to_string()), "{labels:?}");
        assert_eq!(count_ticks(500), (500, vec![0, 100, 200, 300, 400, 500]));
        assert_eq!(count_ticks(0).0, 1);
    }
}
