//! The leaderboard of `hofbench report` over a folder of several models' runs: per model
//! (× approach) and dimension, the country-level Pearson r with its bootstrap interval and
//! the persona effect (the correlation of the persona's shift against the control run with
//! the Hofstede score, and the share of items any persona changes), sorted by the mean r over
//! the dimensions; drawn as `plots/leaderboard.png/.svg` and an HTML table.

use super::plots::{escape, msg, DrawResult, Figure, FAMILY};
use crate::dimension::Dimension;
use crate::stats::{Analysis, Level, PERSONAS};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Write as _;

/// One line of the leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub model: String,
    pub approach: String,
    /// Per dimension (`Dimension::ALL` order): country-level r, all tiers.
    pub r: [Option<f64>; 5],
    /// Its percentile bootstrap interval (bootstrap.csv).
    pub ci: [Option<(f64, f64)>; 5],
    /// Persona effect: r of the shift against the control with the score (personas only).
    pub shift_r: [Option<f64>; 5],
    /// Persona effect: share of control items some persona changes.
    pub items_changed: [Option<f64>; 5],
    /// Mean of the defined r.
    pub mean_r: Option<f64>,
}

/// The leaderboard's lines, best mean r first (undefined last, then by name).
pub fn entries(a: &Analysis) -> Vec<Entry> {
    let mut out = Vec::new();
    for model in a.models() {
        let mut approaches: Vec<&str> = a.groups_of(model).iter().map(|g| g.0).collect();
        approaches.dedup();
        for approach in approaches {
            let r: [Option<f64>; 5] = Dimension::ALL.map(|d| {
                a.correlation((model, approach, d), None, Level::Country)
                    .and_then(|c| c.pearson)
                    .map(|c| c.r)
            });
            let effect = |d: Dimension| {
                a.persona_effect
                    .dimensions
                    .iter()
                    .find(|e| approach == PERSONAS && e.model == model && e.dimension == d)
            };
            let defined: Vec<f64> = r.iter().flatten().copied().collect();
            out.push(Entry {
                model: model.to_string(),
                approach: approach.to_string(),
                r,
                ci: Dimension::ALL.map(|d| {
                    a.bootstrap_of((model, approach, d))
                        .and_then(|b| b.ci.pearson)
                }),
                shift_r: Dimension::ALL
                    .map(|d| effect(d).and_then(|e| e.shift_pearson).map(|c| c.r)),
                items_changed: Dimension::ALL
                    .map(|d| effect(d).and_then(|e| e.share_items_changed)),
                mean_r: (!defined.is_empty())
                    .then(|| defined.iter().sum::<f64>() / defined.len() as f64),
            });
        }
    }
    out.sort_by(|x, y| {
        let key = |e: &Entry| e.mean_r.unwrap_or(f64::NEG_INFINITY);
        key(y)
            .total_cmp(&key(x))
            .then_with(|| (&x.model, &x.approach).cmp(&(&y.model, &y.approach)))
    });
    out
}

fn name(e: &Entry, with_approach: bool) -> String {
    if with_approach {
        format!("{} ({})", e.model, e.approach)
    } else {
        e.model.clone()
    }
}

/// The figure: one panel per dimension, one line per entry (best at the top), r as a dot
/// with its interval, the persona effect's r as a hollow triangle.
pub struct Leaderboard {
    pub title: String,
    pub entries: Vec<Entry>,
}

impl Leaderboard {
    fn with_approach(&self) -> bool {
        let mut a: Vec<&str> = self.entries.iter().map(|e| e.approach.as_str()).collect();
        a.sort();
        a.dedup();
        a.len() > 1
    }
}

impl Figure for Leaderboard {
    fn size(&self) -> (u32, u32) {
        (1200, 140 + 28 * self.entries.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(msg)?;
        let root = root.titled(&self.title, (FAMILY, 20)).map_err(msg)?;
        let n = self.entries.len().max(1);
        let label_width = 260;
        let (labels, panels) = root.split_horizontally(label_width);
        let names: Vec<String> = self
            .entries
            .iter()
            .map(|e| name(e, self.with_approach()))
            .collect();
        // The dimensions some entry has data for, in their fixed order.
        let dims: Vec<(usize, Dimension)> = Dimension::ALL
            .into_iter()
            .enumerate()
            .filter(|&(d, _)| {
                self.entries
                    .iter()
                    .any(|e| e.r[d].is_some() || e.ci[d].is_some())
            })
            .collect();
        let panels = panels.split_evenly((1, dims.len().max(1)));
        let top = 30.0;
        let bottom = 40.0;
        let height = labels.dim_in_pixel().1 as f64;
        let row_y = |k: usize| top + (k as f64 + 0.5) * (height - top - bottom) / n as f64;
        for (k, text) in names.iter().enumerate() {
            labels
                .draw_text(
                    text,
                    &TextStyle::from((FAMILY, 13).into_font()),
                    (8, row_y(k) as i32 - 7),
                )
                .map_err(msg)?;
        }
        for (k, (panel, &(d, dim))) in panels.iter().zip(&dims).enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(dim.code(), (FAMILY, 16))
                .margin_left(12)
                .margin_right(12)
                .x_label_area_size(bottom as u32 - 10)
                .build_cartesian_2d(-1.0..1.0, -(n as f64)..0.0)
                .map_err(msg)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(0)
                .x_labels(5)
                .x_desc(if k == dims.len() / 2 {
                    "country-level r"
                } else {
                    ""
                })
                .label_style((FAMILY, 12))
                .draw()
                .map_err(msg)?;
            chart
                .draw_series(LineSeries::new([(0.0, -(n as f64)), (0.0, 0.0)], BLACK))
                .map_err(msg)?;
            for (k, e) in self.entries.iter().enumerate() {
                let y = -(k as f64) - 0.5;
                let colour = Palette99::pick(k).to_rgba();
                if let Some((lo, hi)) = e.ci[d] {
                    chart
                        .draw_series(LineSeries::new([(lo, y), (hi, y)], colour.stroke_width(2)))
                        .map_err(msg)?;
                }
                if let Some(r) = e.r[d] {
                    chart
                        .draw_series(std::iter::once(Circle::new((r, y), 5, colour.filled())))
                        .map_err(msg)?;
                }
                if let Some(s) = e.shift_r[d] {
                    // Just below the line, so that it stays visible next to an equal r.
                    chart
                        .draw_series(std::iter::once(TriangleMarker::new(
                            (s, y - 0.25),
                            6,
                            BLACK.stroke_width(1),
                        )))
                        .map_err(msg)?;
                }
            }
        }
        Ok(())
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:+.2}"))
}

/// The leaderboard as an HTML table.
pub fn html_table(entries: &[Entry]) -> String {
    let mut h = String::from(
        "<h2>Leaderboard</h2>\n<p>Per model and dimension: country-level Pearson r with the \
         Hofstede score [95% bootstrap interval over countries]; persona effect: r of the \
         persona's shift against the control run with the score, and the share of items any \
         persona changes (– without a control run). Sorted by the mean r.</p>\n<table>\n<tr>\
         <th>rank</th><th>model</th><th>approach</th><th>mean r</th>",
    );
    for d in Dimension::ALL {
        write!(h, "<th>{d} r [CI]</th><th>{d} persona effect</th>").unwrap();
    }
    h.push_str("</tr>\n");
    for (k, e) in entries.iter().enumerate() {
        write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            k + 1,
            escape(&e.model),
            escape(&e.approach),
            cell(e.mean_r)
        )
        .unwrap();
        for d in 0..Dimension::ALL.len() {
            let ci = e.ci[d].map_or_else(String::new, |(l, h)| format!(" [{l:+.2}, {h:+.2}]"));
            let effect = match (e.shift_r[d], e.items_changed[d]) {
                (None, None) => "–".to_string(),
                (r, changed) => format!(
                    "{} ({} changed)",
                    cell(r),
                    changed.map_or_else(|| "–".into(), |c| format!("{:.0}%", c * 100.0))
                ),
            };
            write!(h, "<td>{}{ci}</td><td>{effect}</td>", cell(e.r[d])).unwrap();
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    h
}
