//! Bar charts drawn on the server as SVG: no script, no outside asset, and
//! nothing from a report in them but numbers and our own labels.

use maud::{html, Markup};

/// One bar: its label and a count per series (stacked, in `series` order).
pub struct Bar {
    pub label: String,
    pub counts: Vec<u64>,
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 160;
const BOTTOM: u32 = 20;

/// A stacked bar chart; `series` names each count (the legend and the
/// CSS class `s0`, `s1`, …); `title` is its accessible name.
pub fn stacked(title: &str, series: &[&str], bars: &[Bar]) -> Markup {
    let max = bars
        .iter()
        .map(|b| b.counts.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = u32::try_from(bars.len()).unwrap_or(u32::MAX).max(1);
    let slot = WIDTH / n;
    let bar_width = slot.saturating_sub(2).max(1);
    let plot = HEIGHT - BOTTOM;
    let every = (bars.len() / 10).max(1);
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                role="img" aria-label=(title) {
                title { (title) }
                @for (i, bar) in bars.iter().enumerate() {
                    @let x = u32::try_from(i).unwrap_or(0) * slot;
                    g {
                        title { (bar.label) ": " (bar.counts.iter().sum::<u64>()) }
                        @for (s, y, h) in stack(&bar.counts, max, plot) {
                            rect class=(format!("s{s}")) x=(x) y=(y) width=(bar_width) height=(h) {}
                        }
                    }
                    @if i % every == 0 {
                        text x=(x) y=(HEIGHT - 4) class="axis" { (bar.label) }
                    }
                }
                text x="2" y="12" class="axis" { "max " (max) }
            }
            figcaption {
                (title) " "
                @for (s, name) in series.iter().enumerate() {
                    span class=(format!("key s{s}")) { "■" } " " (name) " "
                }
            }
        }
    }
}

/// Each non-empty segment of a bar: (series, y, height), bottom up.
fn stack(counts: &[u64], max: u64, plot: u32) -> Vec<(usize, u32, u32)> {
    let mut top = plot;
    let mut out = Vec::new();
    for (s, count) in counts.iter().enumerate() {
        let h = scaled(*count, max, plot);
        if h > 0 {
            top = top.saturating_sub(h);
            out.push((s, top, h));
        }
    }
    out
}

fn scaled(count: u64, max: u64, plot: u32) -> u32 {
    let h = count.saturating_mul(u64::from(plot)) / max;
    u32::try_from(h).unwrap_or(plot).min(plot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_labels_are_escaped() {
        let svg = stacked(
            "per day",
            &["web", "<b>"],
            &[
                Bar {
                    label: "<script>".to_owned(),
                    counts: vec![2, 2],
                },
                Bar {
                    label: "d2".to_owned(),
                    counts: vec![1, 0],
                },
            ],
        )
        .into_string();
        assert_eq!(svg.matches("height=\"70\"").count(), 2, "{svg}");
        assert!(svg.contains("height=\"35\""), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        assert!(svg.contains("&lt;b&gt;"));
        assert_eq!(scaled(0, 1, 140), 0);
    }
}
