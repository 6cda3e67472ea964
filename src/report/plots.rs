//! The report's figures, drawn with plotters into PNG and SVG from the same code. Text uses
//! the committed DejaVu Sans (assets/fonts/), so a machine without system fonts draws the
//! same PNGs.

use crate::dimension::Tier;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub(crate) const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are the committed TTF; a failure here is a broken build, not bad input.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("assets/fonts/DejaVuSans.ttf is not a usable font"));
    });
}

/// Text made safe inside HTML and SVG elements and attributes (report.html, the leaderboard).
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn tier_colour(tier: Tier) -> RGBColor {
    match tier {
        Tier::High => RGBColor(31, 119, 180),
        Tier::Mid => RGBColor(255, 127, 14),
        Tier::Low => RGBColor(44, 160, 44),
        Tier::None => RGBColor(127, 127, 127),
    }
}

/// A plotters error, kept as the cause of the `Error::Io` naming the image file.
pub(crate) type DrawResult = std::result::Result<(), crate::error::Source>;

pub(crate) fn msg<E: std::error::Error + Send + Sync + 'static>(e: E) -> crate::error::Source {
    Box::new(e)
}

/// A figure that can be drawn on any plotters backend.
pub trait Figure {
    /// Pixel size of the PNG (and the SVG's viewport).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// Draw `figure` to `dir/name.png` and `dir/name.svg`; returns the SVG text.
pub fn render(figure: &impl Figure, dir: &Path, name: &str) -> Result<String> {
    register_font();
    let png = dir.join(format!("{name}.png"));
    let fail = |path: &Path, e: crate::error::Source| Error::io(path, std::io::Error::other(e));
    {
        let root = BitMapBackend::new(&png, figure.size()).into_drawing_area();
        figure.draw(&root).map_err(|e| fail(&png, e))?;
        root.present().map_err(|e| fail(&png, msg(e)))?;
    }
    let svg_path = dir.join(format!("{name}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
        figure.draw(&root).map_err(|e| fail(&svg_path, e))?;
        root.present().map_err(|e| fail(&svg_path, msg(e)))?;
    }
    crate::files::write_atomic(&svg_path, svg.as_bytes())?;
    Ok(svg)
}

pub struct ScatterPoint {
    pub label: String,
    pub score: f64,
    pub share: f64,
    pub tier: Tier,
}

/// Country score vs high-side share, one point per country, with the least-squares line.
pub struct Scatter {
    pub title: String,
    pub points: Vec<ScatterPoint>,
}

impl Scatter {
    /// Least-squares line share = a + b·score; None when all scores are equal.
    fn fit(&self) -> Option<(f64, f64)> {
        let n = self.points.len() as f64;
        let mx = self.points.iter().map(|p| p.score).sum::<f64>() / n;
        let my = self.points.iter().map(|p| p.share).sum::<f64>() / n;
        let sxx: f64 = self.points.iter().map(|p| (p.score - mx).powi(2)).sum();
        let sxy: f64 = self
            .points
            .iter()
            .map(|p| (p.score - mx) * (p.share - my))
            .sum();
        (sxx > 0.0).then(|| {
            let b = sxy / sxx;
            (my - b * mx, b)
        })
    }
}

impl Scatter {
    /// Vertical pixel offsets of the labels: points of equal share (shares are multiples of
    /// 1/prompts, so ties are common) closer than a label's width stack their labels upwards.
    fn label_offsets(&self) -> Vec<i32> {
        let mut order: Vec<usize> = (0..self.points.len()).collect();
        order.sort_by(|&a, &b| {
            let (p, q) = (&self.points[a], &self.points[b]);
            p.share
                .total_cmp(&q.share)
                .then(p.score.total_cmp(&q.score))
        });
        let mut offsets = vec![0; self.points.len()];
        for (k, &i) in order.iter().enumerate() {
            let p = &self.points[i];
            // Labels already placed on this row whose text runs past p's position.
            let taken: Vec<i32> = order[..k]
                .iter()
                .filter(|&&j| {
                    let q = &self.points[j];
                    (q.share - p.share).abs() < 0.02
                        && p.score - q.score < 1.0 + q.label.chars().count() as f64
                })
                .map(|&j| offsets[j])
                .collect();
            offsets[i] = (0..)
                .map(|level| 13 * level)
                .find(|o| !taken.contains(o))
                .expect("some level is free");
        }
        offsets
    }
}

impl Scatter {
    /// The corner of the plot with the fewest points, for the legend.
    fn emptiest_corner(&self, x_max: f64) -> SeriesLabelPosition {
        let count = |left: bool, upper: bool| {
            self.points
                .iter()
                .filter(|p| (p.score < x_max / 2.0) == left && (p.share > 0.5) == upper)
                .count()
        };
        [
            (SeriesLabelPosition::UpperLeft, count(true, true)),
            (SeriesLabelPosition::LowerRight, count(false, false)),
            (SeriesLabelPosition::UpperRight, count(false, true)),
            (SeriesLabelPosition::LowerLeft, count(true, false)),
        ]
        .into_iter()
        .min_by_key(|(_, n)| *n)
        .map(|(corner, _)| corner)
        .expect("four corners")
    }
}

impl Figure for Scatter {
    fn size(&self) -> (u32, u32) {
        (900, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(msg)?;
        // Room on the right for the labels of the highest scores.
        let x_max = self.points.iter().map(|p| p.score).fold(100.0, f64::max) + 12.0;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, -0.05..1.05)
            .map_err(msg)?;
        chart
            .configure_mesh()
            .x_desc("Hofstede score")
            .y_desc("share of high-side answers")
            .label_style((FAMILY, 14))
            .draw()
            .map_err(msg)?;
        chart
            .draw_series(LineSeries::new(
                [(50.0, -0.05), (50.0, 1.05)],
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .map_err(msg)?;
        if let Some((a, b)) = self.fit() {
            chart
                .draw_series(LineSeries::new(
                    [0.0, x_max].map(|x| (x, a + b * x)),
                    BLACK.stroke_width(2),
                ))
                .map_err(msg)?
                .label("least-squares line")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2))
                });
        }
        let offsets = self.label_offsets();
        for tier in Tier::ALL {
            let colour = tier_colour(tier);
            let pts: Vec<(&ScatterPoint, i32)> = self
                .points
                .iter()
                .zip(&offsets)
                .filter(|(p, _)| p.tier == tier)
                .map(|(p, &o)| (p, o))
                .collect();
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(pts.iter().map(|&(p, dy)| {
                    EmptyElement::at((p.score, p.share))
                        + Circle::new((0, 0), 5, colour.filled())
                        // Stacks grow towards the middle of the plot, away from its edges.
                        + Text::new(
                            p.label.clone(),
                            (7, if p.share > 0.5 { -7 + dy } else { -7 - dy }),
                            (FAMILY, 12).into_font(),
                        )
                }))
                .map_err(msg)?
                .label(format!("{tier}-resource countries"))
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(self.emptiest_corner(x_max))
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(msg)?;
        Ok(())
    }
}

/// Gaussian kernel density at `x` with Scott's bandwidth (σ·n^(-1/5)); a constant sample gets
/// a bandwidth of 0.02 so that it still shows as a peak.
pub fn kde(sample: &[f64], xs: &[f64]) -> Vec<f64> {
    let n = sample.len() as f64;
    let mean = sample.iter().sum::<f64>() / n;
    let var = sample.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let bw = if var > 0.0 {
        var.sqrt() * n.powf(-0.2)
    } else {
        0.02
    };
    let norm = 1.0 / (n * bw * (2.0 * std::f64::consts::PI).sqrt());
    xs.iter()
        .map(|&x| {
            norm * sample
                .iter()
                .map(|&s| (-0.5 * ((x - s) / bw).powi(2)).exp())
                .sum::<f64>()
        })
        .collect()
}

/// Per dimension, the density of p_high for answers given as high-side countries and as
/// low-side countries (the paper's appendix figures).
pub struct Density {
    pub title: String,
    /// (dimension, p_high of high-side countries' answers, of low-side countries' answers)
    pub panels: Vec<(String, Vec<f64>, Vec<f64>)>,
}

impl Figure for Density {
    fn size(&self) -> (u32, u32) {
        ((320 * self.panels.len() as u32 + 40).max(760), 420)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(msg)?;
        let root = root.titled(&self.title, (FAMILY, 22)).map_err(msg)?;
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        let xs: Vec<f64> = (0..=200).map(|i| i as f64 / 200.0).collect();
        let sides = [
            ("high-side countries", RGBColor(31, 119, 180)),
            ("low-side countries", RGBColor(214, 39, 40)),
        ];
        for (area, (dim, high, low)) in areas.iter().zip(&self.panels) {
            let curves: Vec<Option<Vec<f64>>> = [high, low]
                .iter()
                .map(|s| (!s.is_empty()).then(|| kde(s, &xs)))
                .collect();
            let y_max = curves
                .iter()
                .flatten()
                .flat_map(|c| c.iter().copied())
                .fold(0.1, f64::max)
                * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(dim, (FAMILY, 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..1.0, 0.0..y_max)
                .map_err(msg)?;
            chart
                .configure_mesh()
                .x_desc("p_high")
                .y_desc("density")
                .label_style((FAMILY, 12))
                .draw()
                .map_err(msg)?;
            for (curve, (name, colour)) in curves.iter().zip(sides) {
                if let Some(c) = curve {
                    chart
                        .draw_series(LineSeries::new(
                            xs.iter().copied().zip(c.iter().copied()),
                            colour.stroke_width(2),
                        ))
                        .map_err(msg)?
                        .label(name)
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                        });
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperMiddle)
                .label_font((FAMILY, 11))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(msg)?;
        }
        Ok(())
    }
}

/// Diverging colour for a value in [-1, 1]: red below 0, white at 0, blue above.
fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let (end, t) = if v < 0.0 {
        ((214.0, 39.0, 40.0), -v)
    } else {
        ((31.0, 119.0, 180.0), v)
    };
    let mix = |e: f64| (255.0 + (e - 255.0) * t).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// Countries × dimensions, coloured by (high-side share − expected share): blue = more
/// high-side answers than the country's side calls for, red = fewer.
pub struct Heatmap {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    /// values[row][column]; None where a country has no answers for that dimension.
    pub values: Vec<Vec<Option<f64>>>,
}

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        (
            (260 + 110 * self.columns.len() as u32).max(760),
            130 + 22 * self.rows.len() as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(msg)?;
        let (nc, nr) = (self.columns.len(), self.rows.len());
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 18))
            .margin(15)
            .x_label_area_size(30)
            .y_label_area_size(130)
            // A segmented range a..b has a segment per value a..=b: one per column is 0..nc-1.
            .build_cartesian_2d(
                (0..nc.saturating_sub(1)).into_segmented(),
                (0..nr.saturating_sub(1)).into_segmented(),
            )
            .map_err(msg)?;
        let name = |names: &[String], v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        // Rows top to bottom in table order: row i sits at y = nr - 1 - i.
        let row_names: Vec<String> = self.rows.iter().rev().cloned().collect();
        chart
            .configure_mesh()
            .disable_mesh()
            // Names drawn below instead (x_labels(0) loops forever on a usize axis in plotters 0.3.7).
            .x_labels(nc)
            .x_label_formatter(&|_| String::new())
            .y_labels(nr)
            .y_label_formatter(&|v| name(&row_names, v))
            .label_style((FAMILY, 13))
            .draw()
            .map_err(msg)?;
        // Cells in pixels: segment k of n spans [start + k·w, start + (k+1)·w].
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let w = f64::from(xr.end - xr.start) / nc as f64;
        let h = f64::from(yr.end - yr.start) / nr as f64;
        // Column names drawn here: a one-column segmented axis puts its label off centre.
        for (j, column) in self.columns.iter().enumerate() {
            let x = xr.start + ((j as f64 + 0.5) * w).round() as i32;
            root.draw(&Text::new(
                column.clone(),
                (x, yr.end + 14),
                TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(msg)?;
        }
        for (i, row) in self.values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let x0 = xr.start + (j as f64 * w).round() as i32;
                let x1 = xr.start + ((j + 1) as f64 * w).round() as i32;
                let y0 = yr.start + (i as f64 * h).round() as i32;
                let y1 = yr.start + ((i + 1) as f64 * h).round() as i32;
                let fill = v.map_or(RGBColor(220, 220, 220), diverging);
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], fill.filled()))
                    .map_err(msg)?;
                let text = v.map_or_else(|| "–".to_string(), |v| format!("{v:+.2}"));
                let colour = if v.is_some_and(|v| v.abs() > 0.6) {
                    WHITE
                } else {
                    BLACK
                };
                root.draw(&Text::new(
                    text,
                    ((x0 + x1) / 2, (y0 + y1) / 2),
                    TextStyle::from((FAMILY, 12).into_font())
                        .color(&colour)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                ))
                .map_err(msg)?;
            }
        }
        Ok(())
    }
}

/// Country-level r per dimension, one bar per model (× approach).
pub struct ModelBars {
    pub title: String,
    pub dimensions: Vec<String>,
    /// (series name, r per dimension)
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

impl Figure for ModelBars {
    fn size(&self) -> (u32, u32) {
        (1000, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(msg)?;
        let nd = self.dimensions.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 20))
            .margin(15)
            .x_label_area_size(10)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..nd, -1.0..1.0)
            .map_err(msg)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("country-level Pearson r")
            .label_style((FAMILY, 13))
            .draw()
            .map_err(msg)?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (nd, 0.0)], BLACK))
            .map_err(msg)?;
        for (d, name) in self.dimensions.iter().enumerate() {
            chart
                .draw_series(std::iter::once(Text::new(
                    name.clone(),
                    (d as f64 + 0.5, -0.93),
                    TextStyle::from((FAMILY, 16).into_font())
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )))
                .map_err(msg)?;
        }
        let width = 0.8 / self.series.len().max(1) as f64;
        for (k, (name, values)) in self.series.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            let bars = values.iter().enumerate().filter_map(|(d, v)| {
                v.map(|r| {
                    let x0 = d as f64 + 0.1 + k as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.9, r)], colour.filled())
                })
            });
            chart
                .draw_series(bars)
                .map_err(msg)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(msg)?;
        Ok(())
    }
}

/// One bar of `BleuBars`: a country's language, or a whole tier.
pub struct BleuBar {
    pub label: String,
    /// Mean round-trip BLEU; None for a language without translation (English).
    pub mean_bleu: Option<f64>,
    /// "n/m below" text drawn after the bar.
    pub note: String,
    pub tier: Option<crate::dimension::Tier>,
}

/// Mean round-trip BLEU per language (country) and per tier, horizontal bars coloured by
/// tier (tier totals in grey-blue at the bottom), with the low-BLEU threshold as a line.
pub struct BleuBars {
    pub title: String,
    pub bars: Vec<BleuBar>,
    pub threshold: Option<f64>,
}

impl Figure for BleuBars {
    fn size(&self) -> (u32, u32) {
        (900, 120 + 24 * self.bars.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(msg)?;
        let n = self.bars.len().max(1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(230)
            .build_cartesian_2d(0.0..1.0, 0.0..n as f64)
            .map_err(msg)?;
        // Bar i sits at y in [n - 1 - i, n - i]: the table's order, top to bottom.
        let y_of = |i: usize| (n - 1 - i) as f64;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("mean round-trip BLEU of the requests (0–1)")
            .label_style((FAMILY, 13))
            .draw()
            .map_err(msg)?;
        let total_colour = RGBColor(90, 110, 140);
        for (i, bar) in self.bars.iter().enumerate() {
            let y = y_of(i);
            // In the label area, left of the plot: drawn on the root in pixels.
            let (px, py) = chart.backend_coord(&(0.0, y + 0.5));
            root.draw(&Text::new(
                bar.label.clone(),
                (px - 8, py),
                TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(msg)?;
            let colour = bar.tier.map_or(total_colour, tier_colour);
            let (end, note) = match bar.mean_bleu {
                Some(b) => {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(0.0, y + 0.15), (b, y + 0.85)],
                            colour.filled(),
                        )))
                        .map_err(msg)?;
                    (b, format!("{b:.2}  {}", bar.note))
                }
                None => (0.0, bar.note.clone()),
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    note,
                    (end + 0.01, y + 0.5),
                    TextStyle::from((FAMILY, 12).into_font())
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )))
                .map_err(msg)?;
        }
        if let Some(t) = self.threshold {
            chart
                .draw_series(DashedLineSeries::new(
                    [(t, 0.0), (t, n as f64)],
                    6,
                    4,
                    RGBColor(214, 39, 40).stroke_width(2),
                ))
                .map_err(msg)?
                .label(format!("low-BLEU threshold {t}"))
                .legend(|(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 20, y)],
                        RGBColor(214, 39, 40).stroke_width(2),
                    )
                });
        }
        for tier in crate::dimension::Tier::ALL {
            if self.bars.iter().any(|b| b.tier == Some(tier)) {
                let colour = tier_colour(tier);
                chart
                    .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                    .map_err(msg)?
                    .label(format!("{tier}-resource language"))
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                    });
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(msg)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kde_integrates_to_one() {
        let xs: Vec<f64> = (0..=4000).map(|i| -1.0 + i as f64 / 1000.0).collect();
        let d = kde(&[0.2, 0.4, 0.45, 0.9], &xs);
        let area: f64 = d.iter().sum::<f64>() / 1000.0;
        assert!((area - 1.0).abs() < 1e-3, "{area}");
    }

    #[test]
    fn diverging_ends() {
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(1.0), RGBColor(31, 119, 180));
        assert_eq!(diverging(-2.0), RGBColor(214, 39, 40));
    }
}
