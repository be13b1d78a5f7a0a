//! Charts as SVG (plotters, SVG backend only: no fonts or images are loaded): the fan chart of
//! a simulation result, and a frontier (with each point's success probability when it comes
//! from a sweep). Both read the JSON results, so the service and the CLI draw the same thing.

use plotters::prelude::*;
use serde_json::Value;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 480;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The yearly fan chart of a goal: the outer and inner percentile bands, the median and the
/// target, over the years.
pub fn fan_chart(result: &Value) -> Result<String, String> {
    let yearly = result["yearly"]
        .as_array()
        .filter(|y| !y.is_empty())
        .ok_or("the result has no yearly fan chart")?;
    let points = yearly
        .iter()
        .filter_map(|e| Some((e["month"].as_f64()? / 12.0, e["percentiles"].as_object()?)))
        .collect();
    draw_fan(Fan {
        points,
        from: 0.0,
        x_desc: "years",
        y_desc: "wealth (nominal)",
        title: format!(
            "{:.0}% chance of success",
            100.0 * result["success_probability"].as_f64().unwrap_or(0.0)
        ),
        target: result["target_nominal"].as_f64().unwrap_or(0.0),
    })
}

/// The fan chart of a household plan: wealth in today's dollars by the first person's age,
/// over the paths still running each year (a year no path reaches is left out).
pub fn plan_fan_chart(result: &Value) -> Result<String, String> {
    let yearly = result["yearly"]
        .as_array()
        .filter(|y| !y.is_empty())
        .ok_or("the result has no yearly fan chart")?;
    let points: Vec<_> = yearly
        .iter()
        .filter_map(|e| Some((e["age"].as_f64()?, e["wealth_real"].as_object()?)))
        .collect();
    let from = points.first().map_or(0.0, |p| p.0 - 1.0);
    draw_fan(Fan {
        points,
        from,
        x_desc: "age",
        y_desc: "wealth (today's dollars)",
        title: format!(
            "{:.0}% chance the plan lasts",
            100.0 * result["success_probability"].as_f64().unwrap_or(0.0)
        ),
        target: 0.0,
    })
}

/// What a fan chart draws: percentiles (`{"p5": …}`) at each x.
struct Fan<'a> {
    points: Vec<(f64, &'a serde_json::Map<String, Value>)>,
    /// Where the x axis starts.
    from: f64,
    x_desc: &'static str,
    y_desc: &'static str,
    title: String,
    /// A horizontal line, when positive.
    target: f64,
}

fn draw_fan(fan: Fan<'_>) -> Result<String, String> {
    let first = fan
        .points
        .first()
        .ok_or("the result has no yearly fan chart")?;
    // The percentiles present, ascending ("p5" → 5.0).
    let mut keys: Vec<(f64, String)> = first
        .1
        .keys()
        .filter_map(|k| {
            k.strip_prefix('p')?
                .parse::<f64>()
                .ok()
                .map(|p| (p, k.clone()))
        })
        .collect();
    keys.sort_by(|a, b| a.0.total_cmp(&b.0));
    if keys.is_empty() {
        return Err("no percentiles to draw".into());
    }
    let series = |key: &str| -> Vec<(f64, f64)> {
        fan.points
            .iter()
            .map(|(x, p)| (*x, p.get(key).and_then(Value::as_f64).unwrap_or(0.0)))
            .collect()
    };
    let median = keys
        .iter()
        .min_by(|a, b| (a.0 - 50.0).abs().total_cmp(&(b.0 - 50.0).abs()))
        .expect("non-empty")
        .1
        .clone();
    let outer = (keys[0].1.clone(), keys[keys.len() - 1].1.clone());
    let inner = (
        keys[keys.len() / 4].1.clone(),
        keys[keys.len() - 1 - keys.len() / 4].1.clone(),
    );
    let (from, target) = (fan.from, fan.target);
    let to = series(&median)
        .last()
        .map_or(from + 1.0, |p| p.0)
        .max(from + 1.0);
    let top = series(&outer.1)
        .iter()
        .map(|p| p.1)
        .fold(target, f64::max)
        .max(1.0)
        * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&fan.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(from..to, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(fan.x_desc)
            .y_desc(fan.y_desc)
            .y_label_formatter(&|v| crate::money(*v))
            .draw()
            .map_err(err)?;
        for ((low, high), shade) in [(outer, 0.15), (inner, 0.3)] {
            let lows = series(&low);
            let highs = series(&high);
            let band: Vec<(f64, f64)> = lows.iter().chain(highs.iter().rev()).copied().collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    BLUE.mix(shade).filled(),
                )))
                .map_err(err)?
                .label(format!("{low}–{high}"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], BLUE.mix(shade).filled())
                });
        }
        chart
            .draw_series(LineSeries::new(series(&median), BLUE.stroke_width(2)))
            .map_err(err)?
            .label(median.clone())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE.stroke_width(2)));
        if target > 0.0 {
            chart
                .draw_series(LineSeries::new(
                    vec![(from, target), (to, target)],
                    RED.stroke_width(1),
                ))
                .map_err(err)?
                .label("target")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A frontier report or a sweep report: volatility against expected return, each sweep point
/// coloured by its success probability.
pub fn frontier_chart(report: &Value) -> Result<String, String> {
    let points = report["points"]
        .as_array()
        .filter(|p| !p.is_empty())
        .ok_or("the report has no points")?;
    let xy: Vec<(f64, f64, Option<f64>)> = points
        .iter()
        .map(|p| {
            (
                p["volatility"].as_f64().unwrap_or(0.0),
                p["expected_return"].as_f64().unwrap_or(0.0),
                p["success_probability"].as_f64(),
            )
        })
        .collect();
    let (x_max, y_min, y_max) = xy
        .iter()
        .fold((0.0f64, f64::INFINITY, f64::NEG_INFINITY), |a, p| {
            (a.0.max(p.0), a.1.min(p.1), a.2.max(p.1))
        });
    let pad = ((y_max - y_min) * 0.1).max(1e-4);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let swept = xy.iter().any(|p| p.2.is_some());
        let caption = if swept {
            "Efficient frontier: success probability per point"
        } else {
            "Efficient frontier"
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max * 1.05 + 1e-4, (y_min - pad)..(y_max + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("volatility")
            .y_desc("expected return")
            .x_label_formatter(&|v| format!("{:.0}%", 100.0 * v))
            .y_label_formatter(&|v| format!("{:.1}%", 100.0 * v))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                xy.iter().map(|p| (p.0, p.1)),
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        chart
            .draw_series(xy.iter().map(|&(x, y, success)| {
                let colour = match success {
                    // Red (0%) through green (100%).
                    Some(s) => RGBColor((255.0 * (1.0 - s)) as u8, (200.0 * s) as u8, 40),
                    None => BLUE,
                };
                Circle::new((x, y), 4, colour.filled())
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
